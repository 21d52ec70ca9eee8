"""Walk a ledger from its first record and name the first record that breaks the chain.

Each stored record, in ``seq`` order, must pass, in this order (the first failure is the
answer; nothing after it is trusted):

1. ``seq`` is the previous one plus 1, starting at 1 (a deleted record shows as a gap at
   the record after it);
2. ``prev_hash`` equals the previous record's ``hash`` (64 zeros for seq 1);
3. ``hash`` equals the hash recomputed from seq, timestamp, kind, payload, prev_hash
   (:mod:`~medsilo.ledger.chain`): any changed byte of those shows here;
4. ``signature`` is a valid Ed25519 signature of the hash under the given public key;
5. the payload is a JSON object in canonical form (:mod:`~medsilo.ledger.canonical`);
6. structure: seq 1 is the ``genesis`` record and names the verifying key, no other
   genesis, known kinds only, ``round`` and ``run_end`` only inside a run, a ``run_start``
   only after the previous run ended;
7. rounds: no round is missing from a run, resumed runs included
   (:mod:`~medsilo.ledger.round_sequence`).

With ``require_end`` a ledger whose last run has no ``run_end`` fails too: that is the
only way a removed *tail* shows (the chain up to the cut is intact). What verification
cannot see (docs/audit-ledger.md): the removal of the last records of a ledger whose last
run ended, or of an open run when ``require_end`` is off; a chain rewritten and re-signed
with the coordinator's own (stolen) private key; a false statement the coordinator signed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from medsilo.governance.record_kinds import QUORUM_KINDS
from medsilo.ledger.canonical import parse_canonical
from medsilo.ledger.chain import GENESIS_PREV, LedgerRecord
from medsilo.ledger.chain_check import chain_problem
from medsilo.ledger.keys import fingerprint, raw_public
from medsilo.ledger.round_sequence import RoundSequence
from medsilo.ledger.store import GENESIS, open_readonly, read_records
from medsilo.ledger.witness import WITNESS_KIND

KINDS = frozenset(
    {GENESIS, "run_start", "round", "run_end", "enrolment", "attestation", "unlearn"}
    | {"free_rider"}  # a site flagged as a free rider (docs/contribution.md)
    | QUORUM_KINDS  # the council's votes (docs/governance.md, "Quorum decisions")
)  # "unlearn": a data withdrawal retired this run's model (docs/governance.md)
KINDS |= {WITNESS_KIND}  # a site's countersignature of a head (medsilo.ledger.witness)


@dataclass(frozen=True)
class Problem:
    """The first broken record: where (``seq`` of the stored record at which the check
    failed, its ``kind`` and, for round records, ``round``) and why."""

    seq: int
    kind: str
    reason: str
    round: int | None = None
    missing_seq: int | None = None  # set when records are missing before ``seq``

    def describe(self) -> str:
        where = f"record seq {self.seq} (kind {self.kind}"
        where += f", round {self.round})" if self.round is not None else ")"
        return f"{where}: {self.reason}"


@dataclass
class VerifyResult:
    records: int  # stored records read
    verified: int  # records that passed every check before the first problem
    public_key_sha256: str
    problem: Problem | None = None
    head_hash: str | None = None  # hash of the last verified record
    open_run_seq: int | None = None  # seq of a run_start with no run_end yet
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None


def _round_of(record: LedgerRecord) -> int | None:
    """The payload's ``round`` when it can be read at all (for naming a broken record)."""
    try:
        value = json.loads(record.payload).get("round")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def _structure_problem(
    record: LedgerRecord, payload: dict[str, Any], key: Ed25519PublicKey, open_run: int | None
) -> str | None:
    kind = record.kind
    if kind not in KINDS:
        return f"unknown record kind {kind!r}"
    if (record.seq == 1) != (kind == GENESIS):
        return "the first record must be the genesis record, and only the first"
    if kind == GENESIS and payload.get("public_key") != raw_public(key).hex():
        return "the genesis record names a different signing key"
    if kind == "run_start" and open_run is not None:
        return f"run_start while the run started at seq {open_run} has no run_end"
    if kind in ("round", "run_end") and open_run is None:
        return f"{kind} record outside a run (no run_start before it)"
    return None


def verify_records(
    records: Iterable[LedgerRecord], key: Ed25519PublicKey, require_end: bool = True
) -> VerifyResult:
    """Check ``records`` (in stored order) against ``key``; see the module docstring."""
    result = VerifyResult(records=0, verified=0, public_key_sha256=fingerprint(key))
    prev, open_run = GENESIS_PREV, None
    last: LedgerRecord | None = None
    rounds = RoundSequence()  # no round left out (medsilo.ledger.round_sequence)
    for record in records:
        result.records += 1
        if result.problem is not None:
            continue
        reason = chain_problem(record, result.verified + 1, prev, key)
        if reason is None:
            try:
                payload = parse_canonical(record.payload)
            except ValueError as err:
                reason = str(err)
            else:
                reason = _structure_problem(record, payload, key, open_run)
                reason = reason or rounds.problem(record.kind, payload)
        if reason is not None:
            missing = result.verified + 1 if record.seq > result.verified + 1 else None
            result.problem = Problem(record.seq, record.kind, reason, _round_of(record), missing)
            continue
        if record.kind == "run_start":
            open_run = record.seq
        elif record.kind == "run_end":
            open_run = None
        prev, last = record.hash, record
        result.verified += 1
    result.head_hash = prev if last is not None else None
    result.open_run_seq = open_run
    if result.problem is None and last is None:
        result.problem = Problem(1, GENESIS, "the ledger is empty (no genesis record)")
    elif result.problem is None and open_run is not None and last is not None:
        note = (
            f"the run started at seq {open_run} has no run_end: the run did not finish, or "
            f"records after seq {last.seq} were removed"
        )
        if require_end:
            result.problem = Problem(last.seq, last.kind, note, _round_of(last))
        else:
            result.warnings.append(note)
    return result


def verify_ledger(path: Path, key: Ed25519PublicKey, require_end: bool = True) -> VerifyResult:
    """Verify the ledger file at ``path`` (opened read-only)."""
    conn = open_readonly(path)
    try:
        return verify_records(read_records(conn), key, require_end)
    finally:
        conn.close()
