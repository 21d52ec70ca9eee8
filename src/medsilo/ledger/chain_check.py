"""Whether one stored record continues a chain: the check a verifier and a witness share.

:func:`chain_problem` holds a record against the ``seq`` and ``prev_hash`` it must have (the
record before it, or the genesis value for seq 1), recomputes its hash and checks the
coordinator's signature. ``medsilo audit verify`` walks a whole ledger with it
(:mod:`medsilo.ledger.verify`) and a witnessing site walks each head proof with it
(:mod:`medsilo.ledger.witness_file`), so both name the same break in the same words.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from medsilo.ledger.chain import LedgerRecord
from medsilo.ledger.keys import fingerprint


def chain_problem(record: LedgerRecord, seq: int, prev: str, key: Ed25519PublicKey) -> str | None:
    """Why ``record`` cannot stand at ``seq`` after a record hashed ``prev`` under ``key``
    (``None`` when it can): a gap, a broken link, a changed field or a foreign signature."""
    if record.seq != seq:
        gap = f"{seq}" if record.seq == seq + 1 else f"{seq}..{record.seq - 1}"
        return f"record(s) {gap} missing: seq jumps from {seq - 1} to {record.seq}"
    if record.prev_hash != prev:
        before = "the genesis value (64 zeros)" if seq == 1 else f"the hash of record {seq - 1}"
        return f"prev_hash does not match {before}: records were removed, replaced or reordered"
    if record.digest().hex() != record.hash:
        return "hash mismatch: seq, timestamp, kind, payload or prev_hash changed after signing"
    try:
        key.verify(bytes.fromhex(record.signature), bytes.fromhex(record.hash))
    except (InvalidSignature, ValueError):
        return f"signature does not verify with the public key {fingerprint(key)[:16]}..."
    return None
