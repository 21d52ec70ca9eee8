"""A site's witness of the coordinator's ledger: checks each head it is shown, keeps them on disk.

The file is JSON lines, append-only, each line fsynced before the site answers:

* ``header``, always the first line (written with the file, whatever comes first):
  ``format`` (:data:`WITNESS_FORMAT`), ``site``, ``run`` (the run id its countersignatures
  name, :mod:`medsilo.ledger.witness`) and the site's Ed25519 ``public_key`` (raw hex);
* ``coordinator``, once, before the first ``head``: the coordinator key the ledger's genesis
  record named when the site first accepted a proof (``ledger_key``, raw hex, and
  ``ledger_key_sha256``); every later proof must be signed by it;
* ``head``: a head the site accepted and countersigned: ``seq``, ``hash``, the record's
  ``kind``, the coordinator's ``coordinator_signature`` of it and the site's
  ``countersignature``, and ``records``: ``[seq, hash, kind, coordinator_signature]`` of
  every record the proof brought that the site had not seen (the head included), so a
  verifier can name the exact record a later ledger changed, not only the next head;
* ``refused``: a head proof the site refused, with the offered record's ``seq``, ``hash`` and
  ``coordinator_signature`` (so the refusal is evidence, not hearsay), the hash the site had
  witnessed at that seq (``seen_hash``, when it had one) and ``reason``. A refusal of the
  site's very first proof comes before any ``coordinator`` line.

A head proof is accepted when every record's hash recomputes, every record is signed by the
coordinator key of the ``coordinator`` line (for the first proof: the key its genesis record
names), the records are consecutive and linked (:func:`~medsilo.ledger.chain_check
.chain_problem`, the check ``audit verify`` walks a ledger with), and they extend what the
site saw: no record at a seq it witnessed has another hash, the first new record links to its
last head, no records are missing between the two, and the new head is not behind the last
one. Otherwise the site writes a ``refused`` line and raises
:class:`~medsilo.ledger.witness.WitnessError`.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from medsilo.ledger.chain import GENESIS_PREV, LedgerRecord
from medsilo.ledger.chain_check import chain_problem
from medsilo.ledger.keys import fingerprint, raw_public
from medsilo.ledger.store import FORMAT, GENESIS
from medsilo.ledger.witness import Countersignature, HeadProof, WitnessError

WITNESS_FORMAT = "medsilo-witness/2"
HEADER, COORDINATOR, HEAD, REFUSED = "header", "coordinator", "head", "refused"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def read_witness_lines(path: Path) -> list[dict[str, Any]]:
    """The file's lines as objects; a torn last line (a crash while writing) is dropped.
    ``ValueError`` naming the file unless the first line is a header of this format."""
    lines = path.read_text("utf-8").splitlines()
    out: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except ValueError:
            if number == len(lines):
                break
            raise ValueError(f"{path} line {number} is not JSON") from None
        if not isinstance(entry, dict):
            raise ValueError(f"{path} line {number} is not a JSON object")
        out.append(entry)
    if not out or out[0].get("type") != HEADER:
        raise ValueError(f"{path} is not a witness file (no header line)")
    if out[0].get("format") != WITNESS_FORMAT:
        raise ValueError(
            f"{path} is witness format {out[0].get('format')!r}; this medsilo reads "
            f"{WITNESS_FORMAT!r} only (docs/audit-ledger.md)"
        )
    return out


class SiteWitness:
    """One site's witness of one ledger, kept in the JSONL file at ``path`` (``run``: the run
    id its countersignatures name, ``""`` where the runtime has none)."""

    def __init__(self, path: Path, site: str, key: Ed25519PrivateKey, run: str = "") -> None:
        self.path = path
        self.site = site
        self.key = key
        self.run = run
        self.public_key = raw_public(key.public_key()).hex()
        self.ledger_key: Ed25519PublicKey | None = None
        self.seen: dict[int, str] = {}  # seq -> hash of every record witnessed
        self.last: tuple[int, str] | None = None
        if path.is_file():
            self._load()

    def _load(self) -> None:
        for entry in read_witness_lines(self.path):
            if entry.get("type") == HEADER:
                if entry.get("site") != self.site:
                    raise ValueError(f"{self.path} is site {entry.get('site')!r}'s witness file")
                if entry.get("public_key") != self.public_key:
                    raise ValueError(f"{self.path} was written with another site key")
                if entry.get("run") != self.run:
                    raise ValueError(f"{self.path} is run {entry.get('run')!r}'s witness file")
            elif entry.get("type") == COORDINATOR:
                raw = bytes.fromhex(str(entry["ledger_key"]))
                self.ledger_key = Ed25519PublicKey.from_public_bytes(raw)
            elif entry.get("type") == HEAD:
                seq, digest = int(entry["seq"]), str(entry["hash"])
                self.seen.update({int(r[0]): str(r[1]) for r in entry.get("records", [])})
                self.seen[seq] = digest
                if self.last is None or seq >= self.last[0]:
                    self.last = (seq, digest)

    def witness(self, proof: HeadProof) -> Countersignature:
        """Check ``proof`` against what this site saw; on success keep and countersign its
        head, else write a ``refused`` line and raise :class:`WitnessError`."""
        try:
            key = self._check(proof)
        except _Refusal as refusal:
            self._write({"type": REFUSED, **refusal.evidence(self.seen), "at": _now()})
            raise WitnessError(f"site {self.site} refused the ledger head: {refusal}") from None
        head = proof.head
        signature = Countersignature.sign(self.key, self.site, self.run, head.seq, head.hash)
        if self.ledger_key is None:
            self.ledger_key = key
            self._write(
                {
                    "type": COORDINATOR,
                    "ledger_key": raw_public(key).hex(),
                    "ledger_key_sha256": fingerprint(key),
                    "at": _now(),
                }
            )
        if self.last is None or head.seq > self.last[0]:
            new = [r for r in proof.records if self.last is None or r.seq > self.last[0]]
            self._write(
                {
                    "type": HEAD,
                    "seq": head.seq,
                    "hash": head.hash,
                    "kind": head.kind,
                    "coordinator_signature": head.signature,
                    "countersignature": signature.signature,
                    "records": [[r.seq, r.hash, r.kind, r.signature] for r in new],
                    "at": _now(),
                }
            )
            self.seen.update({r.seq: r.hash for r in new})
            self.last = (head.seq, head.hash)
        return signature

    def _check(self, proof: HeadProof) -> Ed25519PublicKey:
        """The coordinator key the proof verifies under; :class:`_Refusal` if it does not."""
        records = proof.records
        key = self.ledger_key or _genesis_key(records[0])
        previous: LedgerRecord | None = None
        for record in records:
            _check_record(record, previous, key)
            previous = record
        for record in records:
            seen = self.seen.get(record.seq)
            if seen is not None and seen != record.hash:
                raise _Refusal(
                    record,
                    f"record seq {record.seq} has hash {record.hash[:16]}..., but this site "
                    f"witnessed {seen[:16]}... at that seq: another history (equivocation or "
                    "a rewritten chain)",
                )
        if self.last is None:
            return key
        last_seq, last_hash = self.last
        first, head = records[0], records[-1]
        if first.seq > last_seq + 1:
            raise _Refusal(
                first,
                f"records {last_seq + 1}..{first.seq - 1} are missing between the head this "
                f"site witnessed (seq {last_seq}) and the proof",
            )
        if first.seq == last_seq + 1 and first.prev_hash != last_hash:
            raise _Refusal(
                first,
                f"record seq {first.seq} does not extend the head this site witnessed (seq "
                f"{last_seq}, hash {last_hash[:16]}...): another history",
            )
        if head.seq < last_seq:
            raise _Refusal(
                head,
                f"the head seq {head.seq} is behind the head seq {last_seq} this site "
                "witnessed: the ledger was cut back",
            )
        return key

    def _write(self, entry: dict[str, Any]) -> None:
        """Append ``entry`` (after the header line, when the file is new) and fsync it."""
        created = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = [entry]
        if created:
            header = {"type": HEADER, "format": WITNESS_FORMAT, "site": self.site}
            lines.insert(0, header | {"run": self.run, "public_key": self.public_key, "at": _now()})
        with self.path.open("a", encoding="utf-8") as out:
            out.write("".join(json.dumps(line, sort_keys=True) + "\n" for line in lines))
            out.flush()
            os.fsync(out.fileno())
        if created:  # the new file's directory entry is durable too
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


class _Refusal(Exception):
    """Why a proof is refused, and the coordinator-signed record that shows it."""

    def __init__(self, record: LedgerRecord, reason: str) -> None:
        super().__init__(reason)
        self.record = record
        self.reason = reason

    def evidence(self, seen: dict[int, str]) -> dict[str, Any]:
        return {
            "seq": self.record.seq,
            "hash": self.record.hash,
            "kind": self.record.kind,
            "coordinator_signature": self.record.signature,
            "seen_hash": seen.get(self.record.seq),
            "reason": self.reason,
        }


def _genesis_key(record: LedgerRecord) -> Ed25519PublicKey:
    """The coordinator key a first proof's genesis record names (a site's first proof must
    start at the genesis record)."""
    if record.seq != 1 or record.kind != GENESIS:
        raise _Refusal(record, "a site's first ledger proof must start at the genesis record")
    try:
        payload = json.loads(record.payload)
        if payload.get("format") != FORMAT:
            raise ValueError(f"format {payload.get('format')!r}")
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(payload["public_key"]))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise _Refusal(record, f"the genesis record names no usable key ({err})") from None


def _check_record(
    record: LedgerRecord, previous: LedgerRecord | None, key: Ed25519PublicKey
) -> None:
    """A proof's record against the one before it in the proof (the first record of a proof
    that starts after the genesis is linked to the site's last head by the caller)."""
    if previous is not None:
        seq, prev = previous.seq + 1, previous.hash
    else:
        seq, prev = record.seq, GENESIS_PREV if record.seq == 1 else record.prev_hash
    problem = chain_problem(record, seq, prev, key)
    if problem is not None:
        raise _Refusal(record, f"record seq {record.seq}: {problem}")
