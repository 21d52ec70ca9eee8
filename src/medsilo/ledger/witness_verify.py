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
  seq (the first such seq per pair of sites), or a site refused a head that did not extend
  what it saw (its ``refused`` lines);
* **countersignature**: a ``witness`` record in the ledger that does not verify, or names
  another key for a site than the site's own file;
* **bad witness line**: a line of a witness file whose coordinator signatures or
  countersignature do not verify (the line is ignored: a site cannot frame the
  coordinator with records the coordinator never signed).

Every finding names the site and the ledger record (``seq``).
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
from medsilo.ledger.keys import fingerprint
from medsilo.ledger.witness import WITNESS_KIND, Countersignature, WitnessError
from medsilo.ledger.witness_file import HEAD, HEADER, REFUSED, read_witness_lines


@dataclass(frozen=True)
class WitnessFinding:
    """One disagreement between the ledger and what a site witnessed."""

    what: str  # re-signed, truncated, diverged, equivocation, countersignature, bad witness line
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
    public_key: str
    ledger_key: str
    heads: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)

    @staticmethod
    def read(path: Path) -> WitnessLog:
        """Raises ``ValueError`` naming the file when it is not a witness file."""
        entries = read_witness_lines(path)
        headers = [e for e in entries if e.get("type") == HEADER]  # refusals may come first
        if not headers:
            raise ValueError(f"{path} is not a witness file (no header line)")
        header = headers[0]
        try:
            log = WitnessLog(
                path, str(header["site"]), str(header["public_key"]), str(header["ledger_key"])
            )
        except KeyError as err:
            raise ValueError(f"{path}: the header has no {err}") from None
        for entry in entries:
            if entry.get("type") == HEAD:
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


def _coordinator_signed(log: WitnessLog, entry: dict[str, Any]) -> bool:
    """Whether a line's record hash carries the witnessed coordinator key's signature."""
    try:
        digest = bytes.fromhex(str(entry["hash"]))
    except (KeyError, ValueError):
        return False
    return _verifies(log.ledger_key, str(entry.get("coordinator_signature")), digest)


def _witnessed_records(log: WitnessLog, findings: list[WitnessFinding]) -> list[dict[str, Any]]:
    """``{seq, hash, kind}`` of every record the site witnessed, from the head lines that
    the site countersigned, each record signed by the witnessed coordinator key."""
    out = []
    for entry in log.heads:
        seq, digest = int(entry["seq"]), str(entry["hash"])
        signature = Countersignature(
            log.site, seq, digest, log.public_key, str(entry.get("countersignature"))
        )
        rows = [dict(zip(("seq", "hash", "kind", "coordinator_signature"), r, strict=False))
                for r in entry.get("records", [])]  # fmt: skip
        problem = None
        if not signature.valid():
            problem = "the site's countersignature of this head does not verify"
        elif not all(_coordinator_signed(log, row) for row in [entry, *rows]):
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
    genesis = records.get(1)
    genesis_key = json.loads(genesis.payload).get("public_key") if genesis else None
    if genesis_key != log.ledger_key:
        witnessed = fingerprint(Ed25519PublicKey.from_public_bytes(bytes.fromhex(log.ledger_key)))
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


def _refusals(log: WitnessLog) -> list[WitnessFinding]:
    out = []
    for entry in log.refused:
        signed = _coordinator_signed(log, entry)
        proof = "signed by the coordinator" if signed else "NOT signed by the witnessed key"
        out.append(
            WitnessFinding(
                "equivocation",
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


def _countersignatures(
    records: dict[int, LedgerRecord], logs: dict[str, WitnessLog]
) -> list[WitnessFinding]:
    out = []
    for record in records.values():
        if record.kind != WITNESS_KIND:
            continue
        try:
            signature = Countersignature.from_payload(json.loads(record.payload))
        except (WitnessError, ValueError) as err:
            out.append(WitnessFinding("countersignature", "?", record.seq, str(err)))
            continue
        log = logs.get(signature.site)
        if log is not None and signature.public_key != log.public_key:
            reason = "names another key for the site than its witness file: forged"
        elif not signature.valid():
            reason = "the countersignature does not verify"
        elif signature.seq >= record.seq or not _holds(records, signature.seq, signature.hash):
            reason = f"it countersigns seq {signature.seq}, which this ledger does not hold"
        else:
            continue
        out.append(WitnessFinding("countersignature", signature.site, record.seq, reason))
    return out


def check_witnesses(
    records: Sequence[LedgerRecord], logs: Iterable[WitnessLog]
) -> list[WitnessFinding]:
    """Every finding (module docstring) for ``records`` (as stored, in seq order)."""
    by_seq = {r.seq: r for r in records}
    by_site = {log.site: log for log in logs}
    findings: list[WitnessFinding] = []
    genuine = {}
    for site, log in by_site.items():
        genuine[site] = _witnessed_records(log, findings)
        findings += _against_ledger(log, genuine[site], by_seq)
        findings += _refusals(log)
    findings += _between_sites(genuine)
    findings += _countersignatures(by_seq, by_site)
    return findings
