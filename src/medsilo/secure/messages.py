"""The protocol's messages and their exact wire encoding (what ``bytes_up`` counts).

Sites talk to the coordinator only; the coordinator relays. The four site-to-coordinator
messages (one per protocol round, Bonawitz et al. 2017, figure 4 without the optional
signature round) are length-checked binary records, little-endian, starting with a one-byte
tag; :func:`parse` rejects any record whose tag, length or field sizes are wrong with
:class:`MalformedMessage`. Coordinator-to-site messages (the key list, relayed ciphertexts,
the survivor list) are plain dataclasses: they carry nothing secret and the in-process
engine does not count downlink bytes of the protocol.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from medsilo.secure.shamir import SHARE_BYTES

KEY_BYTES = 32
COMMITMENT_BYTES = 32
#: AES-GCM record of one pair of shares: nonce (12) + ciphertext of
#: ``sender (4) + recipient (4) + share of s_SK + share of b`` + tag (16).
SEALED_SHARE_BYTES = 12 + 8 + 2 * SHARE_BYTES + 16

_ADVERTISE, _SHARE, _MASKED, _UNMASK = 1, 2, 3, 4
_HEAD = struct.Struct("<BI")  # tag, site
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class MalformedMessage(ValueError):
    """A received record does not parse (wrong tag, length or field size)."""


@dataclass(frozen=True)
class AdvertiseKeys:
    """Round 0: the site's two X25519 public keys (``c`` encrypts shares, ``s`` masks)."""

    site: int
    c_public: bytes
    s_public: bytes

    def encode(self) -> bytes:
        _check(len(self.c_public) == KEY_BYTES and len(self.s_public) == KEY_BYTES, "key size")
        return _HEAD.pack(_ADVERTISE, self.site) + self.c_public + self.s_public


@dataclass(frozen=True)
class ShareKeys:
    """Round 1: shares of ``s_i^SK`` and ``b_i`` sealed for each other site, plus a
    commitment ``SHA-256(b_i)`` that lets the coordinator detect tampered shares."""

    site: int
    b_commitment: bytes
    sealed: dict[int, bytes] = field(default_factory=dict)

    def encode(self) -> bytes:
        _check(len(self.b_commitment) == COMMITMENT_BYTES, "commitment size")
        parts = [_HEAD.pack(_SHARE, self.site), self.b_commitment, _U32.pack(len(self.sealed))]
        for recipient, ct in sorted(self.sealed.items()):
            _check(len(ct) == SEALED_SHARE_BYTES, "sealed share size")
            parts += [_U32.pack(recipient), ct]
        return b"".join(parts)


@dataclass(frozen=True)
class MaskedInput:
    """Round 2: ``y_i = x_i + PRG(b_i) + sum_j +-PRG(s_ij) mod 2**k`` as raw integers."""

    site: int
    values: bytes

    def encode(self) -> bytes:
        return _HEAD.pack(_MASKED, self.site) + _U64.pack(len(self.values)) + self.values


@dataclass(frozen=True)
class UnmaskShares:
    """Round 3: shares of ``b_j`` for surviving ``j`` and of ``s_j^SK`` for dropped ``j``."""

    site: int
    b_shares: dict[int, bytes] = field(default_factory=dict)
    sk_shares: dict[int, bytes] = field(default_factory=dict)

    def encode(self) -> bytes:
        parts = [_HEAD.pack(_UNMASK, self.site)]
        for table in (self.b_shares, self.sk_shares):
            parts.append(_U32.pack(len(table)))
            for owner, share in sorted(table.items()):
                _check(len(share) == SHARE_BYTES, "share size")
                parts += [_U32.pack(owner), share]
        return b"".join(parts)


SiteMessage = AdvertiseKeys | ShareKeys | MaskedInput | UnmaskShares


@dataclass(frozen=True)
class KeyList:
    """Coordinator to sites after round 0: the public keys of every site that advertised."""

    keys: dict[int, AdvertiseKeys]


@dataclass(frozen=True)
class RelayedShares:
    """Coordinator to one site after round 1: sealed shares addressed to it, by sender."""

    sealed: dict[int, bytes]


@dataclass(frozen=True)
class Survivors:
    """Coordinator to sites after round 2: the sites whose masked input arrived."""

    sites: frozenset[int]


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise MalformedMessage(f"malformed secure-aggregation message: bad {what}")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        _check(n >= 0 and self.pos + n <= len(self.data), f"{what} (truncated)")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u32(self, what: str) -> int:
        return int(_U32.unpack(self.take(4, what))[0])

    def u64(self, what: str) -> int:
        return int(_U64.unpack(self.take(8, what))[0])

    def done(self) -> None:
        _check(self.pos == len(self.data), "length (trailing bytes)")


def parse(data: bytes) -> SiteMessage:
    """Decode a site's message; raises :class:`MalformedMessage` on any inconsistency."""
    r = _Reader(data)
    tag, site = _HEAD.unpack(r.take(_HEAD.size, "header"))
    msg: SiteMessage
    if tag == _ADVERTISE:
        msg = AdvertiseKeys(site, r.take(KEY_BYTES, "c key"), r.take(KEY_BYTES, "s key"))
    elif tag == _SHARE:
        commitment = r.take(COMMITMENT_BYTES, "commitment")
        count = r.u32("share count")
        sealed = {
            r.u32("recipient"): r.take(SEALED_SHARE_BYTES, "sealed share") for _ in range(count)
        }
        _check(len(sealed) == count, "duplicate recipient")
        msg = ShareKeys(site, commitment, sealed)
    elif tag == _MASKED:
        msg = MaskedInput(site, r.take(r.u64("vector length"), "masked vector"))
    elif tag == _UNMASK:
        tables: list[dict[int, bytes]] = []
        for name in ("b", "s_SK"):
            count = r.u32(f"{name} share count")
            table = {
                r.u32("share owner"): r.take(SHARE_BYTES, f"{name} share") for _ in range(count)
            }
            _check(len(table) == count, f"duplicate {name} share owner")
            tables.append(table)
        msg = UnmaskShares(site, tables[0], tables[1])
    else:
        raise MalformedMessage(f"malformed secure-aggregation message: unknown tag {tag}")
    r.done()
    return msg
