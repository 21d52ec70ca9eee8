"""One ledger record and the hash that chains it to the one before.

``hash = SHA-256(TAG || field(seq) || field(timestamp) || field(kind) || field(payload) ||
field(prev_hash))`` where ``TAG = b"medsilo-ledger/1\\n"`` and ``field(x)`` is the 8-byte
big-endian length of ``x`` followed by ``x`` (``seq`` as decimal ASCII, ``timestamp`` an
ISO-8601 UTC string, ``prev_hash`` 64 lowercase hex characters). Length prefixes make the
encoding unambiguous (no two field tuples give the same bytes); the tag keeps the hash from
being reused for anything else. The timestamp is hashed too, so it cannot be changed either.
The first record's ``prev_hash`` is :data:`GENESIS_PREV` (64 zeros). The coordinator signs
the 32 raw hash bytes with Ed25519 (:mod:`~medsilo.ledger.keys`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

TAG = b"medsilo-ledger/1\n"
GENESIS_PREV = "0" * 64


def length_prefixed(data: bytes) -> bytes:
    """``data`` after its 8-byte big-endian length: fields so framed cannot run together."""
    return len(data).to_bytes(8, "big") + data


def record_digest(seq: int, timestamp: str, kind: str, payload: bytes, prev_hash: str) -> bytes:
    """The 32-byte SHA-256 a record's ``hash`` column holds (hex) and its signature covers."""
    h = hashlib.sha256(TAG)
    for part in (str(seq).encode("ascii"), timestamp.encode(), kind.encode(), payload):
        h.update(length_prefixed(part))
    h.update(length_prefixed(prev_hash.encode("ascii")))
    return h.digest()


@dataclass(frozen=True)
class LedgerRecord:
    """A row of the ledger as stored (``payload`` are the canonical JSON bytes)."""

    seq: int
    timestamp: str
    kind: str
    payload: bytes
    prev_hash: str
    hash: str
    signature: str

    def digest(self) -> bytes:
        """The hash recomputed from the other fields (equals ``bytes.fromhex(self.hash)``
        unless the record was altered)."""
        return record_digest(self.seq, self.timestamp, self.kind, self.payload, self.prev_hash)
