"""Hold a ledger against the sites' witness files: what one signer alone could hide shows here.

Each site's file (:mod:`medsilo.ledger.witness_file`) lists the heads it was shown, each
countersigned by the site, and every record it was shown, each signed by the coordinator.
For a ledger as stored:

* **re-signed**: the ledger's genesis names another coordinator key than the one the site
  witnessed (a history rewritten and signed under a new key, ``ledger.pub`` replaced);
* **truncated**: the site witnessed a record beyond the ledger's last record (records removed
  from the end, e.g. after a ``run_end``);
* **diverged**: the ledger holds another hash at a seq where the site witnessed a record (a
  history rewritten with the coordinator's own key, or shown differently to this site): the
  first such record is named;
* **equivocation**: two sites witnessed different coordinator-signed records at the same
  seq (the first such seq per pair of sites);
* **refused**: a site refused a head proof (its ``refused`` lines, its very first proof
  included), named at the offered record;
* **countersignature**: a ``witness`` record in the ledger that is not under the key pinned
  for its site (:mod:`medsilo.ledger.witness_keys`, ``RUN/witness_keys.json``), names another
  run, does not verify, names another key than the site's own file, or signs a head the
  ledger does not hold;
* **key pin**: a site's witness file under another key or run than the one pinned for it,
  or a pinned key other than the one the site's ``enrolment`` record names;
* **bad witness line**: a line of a witness file whose coordinator signatures or
  countersignature do not verify (the line is ignored: a site cannot frame the
  coordinator with records the coordinator never signed).

Every finding names the site and the ledger record (``seq``). Sites the run pinned a key
for, or whose countersignatures the ledger holds, but whose witness file was not given are
listed by :func:`unchecked_sites`: what no file was given for was not checked. Without the
pins (a copy of the ledger alone) the checks against them are left out, and the caller says
so (``medsilo audit verify``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from medsilo.ledger.chain import LedgerRecord
from medsilo.ledger.witness import WITNESS_KIND, Countersignature, WitnessError
from medsilo.ledger.witness_file import COORDINATOR, HEAD, REFUSED, read_witness_lines
from medsilo.ledger.witness_keys import WitnessKeys, key_fingerprint


@dataclass(frozen=True)
class WitnessFinding:
    """One disagreement between the ledger and what a site witnessed."""

    what: str  # re-signed, truncated, diverged, equivocation, refused, countersignature, key
    # pin, bad witness line
    site: str
    seq: int
    reason: str

    def describe(self) -> str:
        return f"{self.what} at record seq {self.seq}, site {self.site}: {self.reason}"


@dataclass
class WitnessLog:
    """A site's witness file, read (signatures not yet checked)."""

    path: Path
    site: str
    run: str
    public_key: str
    ledger_key: str | None = None  # None: the site accepted no proof (it refused them all)
    heads: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)

    @staticmethod
    def read(path: Path) -> WitnessLog:
        """Raises ``ValueError`` naming the file when it is not a witness file."""
        entries = read_witness_lines(path)  # the header first, or ValueError
        header = entries[0]
        try:
            log = WitnessLog(
                path, str(header["site"]), str(header["run"]), str(header["public_key"])
            )
        except KeyError as err:
            raise ValueError(f"{path}: the header has no {err}") from None
        for entry in entries:
            if entry.get("type") == COORDINATOR and log.ledger_key is None:
                log.ledger_key = str(entry.get("ledger_key"))
            elif entry.get("type") == HEAD:
                log.heads.append(entry)
            elif entry.get("type") == REFUSED:
                log.refused.append(entry)
        return log


def witness_files(paths: Iterable[Path]) -> list[Path]:
    """Each path itself, or the ``*.jsonl`` files in it for a directory."""
    out: list[Path] = []
    for path in paths:
        out += sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    return out


def _verifies(public_hex: str, signature: str, message: bytes) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        key.verify(bytes.fromhex(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _coordinator_signed(key_hex: str | None, entry: dict[str, Any]) -> bool:
    """Whether a line's record hash carries the signature of coordinator key ``key_hex``."""
    try:
        digest = bytes.fromhex(str(entry["hash"]))
    except (KeyError, ValueError):
        return False
    return key_hex is not None and _verifies(
        key_hex, str(entry.get("coordinator_signature")), digest
    )


def _witnessed_records(log: WitnessLog, findings: list[WitnessFinding]) -> list[dict[str, Any]]:
    """``{seq, hash, kind}`` of every record the site witnessed, from the head lines that
    the site countersigned, each record signed by the witnessed coordinator key."""
    out = []
    for entry in log.heads:
        seq, digest = int(entry["seq"]), str(entry["hash"])
        signature = Countersignature(
            log.site, log.run, seq, digest, log.public_key, str(entry.get("countersignature"))
        )
        rows = [dict(zip(("seq", "hash", "kind", "coordinator_signature"), r, strict=False))
                for r in entry.get("records", [])]  # fmt: skip
        problem = None
        if not signature.valid():
            problem = "the site's countersignature of this head does not verify"
        elif not all(_coordinator_signed(log.ledger_key, row) for row in [entry, *rows]):
            problem = "a record in this line is not signed by the witnessed coordinator key"
        if problem is None:
            out += [{"seq": int(r["seq"]), "hash": r["hash"], "kind": r.get("kind")} for r in rows]
            out.append({"seq": seq, "hash": digest, "kind": entry.get("kind")})
        else:
            findings.append(
                WitnessFinding(
                    "bad witness line", log.site, seq, f"{log.path}: {problem}; line ignored"
                )
            )
    return out


def _against_ledger(
    log: WitnessLog, seen: list[dict[str, Any]], records: dict[int, LedgerRecord]
) -> list[WitnessFinding]:
    findings = []
    if log.ledger_key is not None and _genesis_key(records) != log.ledger_key:
        witnessed = key_fingerprint(log.ledger_key)
        findings.append(
            WitnessFinding(
                "re-signed",
                log.site,
                1,
                f"the ledger's genesis names another coordinator key than the one this site "
                f"witnessed ({witnessed[:16]}...): the chain was re-signed",
            )
        )
    end = max(records, default=0)
    beyond = [h for h in seen if int(h["seq"]) > end]
    if beyond:
        last = max(beyond, key=lambda h: int(h["seq"]))
        findings.append(
            WitnessFinding(
                "truncated",
                log.site,
                int(last["seq"]),
                f"the site witnessed record seq {last['seq']} (kind {last.get('kind')}, hash "
                f"{str(last['hash'])[:16]}...), but the ledger ends at seq {end}: records "
                f"{end + 1}..{last['seq']} were removed",
            )
        )
    for head in sorted(seen, key=lambda h: int(h["seq"])):
        seq = int(head["seq"])
        stored = records.get(seq)
        if seq <= end and (stored is None or stored.hash != head["hash"]):
            findings.append(
                WitnessFinding(
                    "diverged",
                    log.site,
                    seq,
                    f"the ledger has {_describe(stored)} where the site witnessed "
                    f"{str(head['hash'])[:16]}"
                    f"... (kind {head.get('kind')}), signed by the coordinator: it showed this "
                    "site another history, or rewrote the ledger since",
                )
            )
            break  # everything after the first divergence differs too
    return findings


def _describe(record: LedgerRecord | None) -> str:
    if record is None:
        return "no record"
    return f"hash {record.hash[:16]}... (kind {record.kind})"


def _holds(records: dict[int, LedgerRecord], seq: int, digest: str) -> bool:
    stored = records.get(seq)
    return stored is not None and stored.hash == digest


def _payload(record: LedgerRecord | None) -> dict[str, Any]:
    """A record's payload object; ``{}`` for one that is not (a tampered record, which the
    chain check names: here it only must not stop the other checks)."""
    try:
        payload = json.loads(record.payload) if record is not None else {}
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _genesis_key(records: dict[int, LedgerRecord]) -> str | None:
    """The coordinator key (raw hex) the ledger's genesis record names."""
    key = _payload(records.get(1)).get("public_key")
    return key if isinstance(key, str) else None


def _refusals(log: WitnessLog, records: dict[int, LedgerRecord]) -> list[WitnessFinding]:
    """Each ``refused`` line, its offered record checked against the coordinator key the site
    witnessed (or, for a refused first proof, the key this ledger's genesis names)."""
    out = []
    key = log.ledger_key or _genesis_key(records)
    for entry in log.refused:
        signed = _coordinator_signed(key, entry)
        proof = "signed by the coordinator" if signed else "NOT signed by the coordinator key"
        out.append(
            WitnessFinding(
                "refused",
                log.site,
                int(entry["seq"]),
                f"the site refused a head ({proof}): {entry.get('reason')}",
            )
        )
    return out


def _between_sites(seen: dict[str, list[dict[str, Any]]]) -> list[WitnessFinding]:
    """The first seq at which two sites witnessed different records, per pair of sites."""
    first_seen: dict[int, tuple[str, str]] = {}
    out = []
    reported: set[frozenset[str]] = set()
    for site in sorted(seen):
        for head in sorted(seen[site], key=lambda h: int(h["seq"])):
            seq, digest = int(head["seq"]), str(head["hash"])
            other = first_seen.setdefault(seq, (site, digest))
            pair = frozenset({site, other[0]})
            if other[1] != digest and pair not in reported:
                reported.add(pair)
                out.append(
                    WitnessFinding(
                        "equivocation",
                        site,
                        seq,
                        f"sites {other[0]} and {site} were shown different records at seq "
                        f"{seq} ({other[1][:16]}... vs {digest[:16]}...), both signed by the "
                        "coordinator",
                    )
                )
    return out


def _countersigned(
    records: dict[int, LedgerRecord],
) -> list[tuple[LedgerRecord, Countersignature | str]]:
    """Each ``witness`` record with its countersignature, or why it cannot be read."""
    out: list[tuple[LedgerRecord, Countersignature | str]] = []
    for record in records.values():
        if record.kind == WITNESS_KIND:
            try:
                out.append((record, Countersignature.from_payload(json.loads(record.payload))))
            except (WitnessError, ValueError) as err:
                out.append((record, str(err)))
    return out


def _countersignatures(
    records: dict[int, LedgerRecord], logs: dict[str, WitnessLog], pins: WitnessKeys | None
) -> list[WitnessFinding]:
    out = []
    for record, signature in _countersigned(records):
        if not isinstance(signature, Countersignature):
            out.append(WitnessFinding("countersignature", "?", record.seq, signature))
            continue
        log = logs.get(signature.site)
        problem = pins.problem(signature) if pins is not None else None
        if problem is not None:
            reason = problem
        elif not signature.valid():  # (pins check it too)
            reason = "the countersignature does not verify"
        elif log is not None and signature.public_key != log.public_key:
            reason = "names another key for the site than its witness file: forged"
        elif signature.seq >= record.seq or not _holds(records, signature.seq, signature.hash):
            reason = f"it countersigns seq {signature.seq}, which this ledger does not hold"
        else:
            continue
        out.append(WitnessFinding("countersignature", signature.site, record.seq, reason))
    return out


def _pins_against_enrolment(
    records: dict[int, LedgerRecord], pins: WitnessKeys | None
) -> list[WitnessFinding]:
    """A pinned key must be the one the site's last ``enrolment`` record names (deployed)."""
    enrolled: dict[str, tuple[int, str]] = {}
    for record in records.values():
        if record.kind == "enrolment":
            payload = _payload(record)
            if payload.get("action") == "enrolled" and payload.get("public_key_sha256"):
                enrolled[str(payload["site"])] = (record.seq, str(payload["public_key_sha256"]))
    out = []
    for site, (seq, named) in sorted(enrolled.items()):
        pinned = pins.keys.get(site) if pins is not None else None
        if pinned is not None and key_fingerprint(pinned) != named:
            reason = (
                f"the witness key pinned for the site ({key_fingerprint(pinned)[:16]}...) is "
                f"not the key its enrolment names ({named[:16]}...)"
            )
            out.append(WitnessFinding("key pin", site, seq, reason))
    return out


def _log_against_pins(log: WitnessLog, pins: WitnessKeys | None) -> list[WitnessFinding]:
    if pins is None:
        return []
    seq = int(log.heads[0]["seq"]) if log.heads else 0
    pinned = pins.keys.get(log.site)
    if pinned is None:
        reason = "the run pinned no witness key for this site"
    elif log.public_key != pinned:
        reason = f"{log.path} is signed with another key than the one pinned for the site"
    elif log.run != pins.run:
        reason = f"{log.path} is run {log.run!r}'s witness file, not this run's ({pins.run!r})"
    else:
        return []
    return [WitnessFinding("key pin", log.site, seq, reason)]


def check_countersignatures(
    records: Sequence[LedgerRecord], pins: WitnessKeys | None
) -> list[WitnessFinding]:
    """What the ledger alone shows about its ``witness`` records: each under its site's
    pinned key, in this run, verifying, over a head the ledger holds (no witness file)."""
    by_seq = {r.seq: r for r in records}
    return _countersignatures(by_seq, {}, pins) + _pins_against_enrolment(by_seq, pins)


def check_witnesses(
    records: Sequence[LedgerRecord], logs: Iterable[WitnessLog], pins: WitnessKeys | None
) -> list[WitnessFinding]:
    """Every finding (module docstring) for ``records`` (as stored, in seq order), with the
    run's pinned witness keys ``pins``."""
    by_seq = {r.seq: r for r in records}
    by_site = {log.site: log for log in logs}
    findings: list[WitnessFinding] = []
    genuine = {}
    for site, log in by_site.items():
        genuine[site] = _witnessed_records(log, findings)
        findings += _log_against_pins(log, pins)
        findings += _against_ledger(log, genuine[site], by_seq)
        findings += _refusals(log, by_seq)
    findings += _between_sites(genuine)
    findings += _countersignatures(by_seq, by_site, pins)
    findings += _pins_against_enrolment(by_seq, pins)
    return findings


def unchecked_sites(
    records: Sequence[LedgerRecord], logs: Iterable[WitnessLog], pins: WitnessKeys | None
) -> list[str]:
    """Sites of the run (a pinned key, or a countersignature in the ledger) whose witness
    file is not among ``logs``: nothing they witnessed was checked."""
    sites = set(pins.keys) if pins is not None else set()
    by_seq = {r.seq: r for r in records}
    sites |= {s.site for _, s in _countersigned(by_seq) if isinstance(s, Countersignature)}
    return sorted(sites - {log.site for log in logs})
