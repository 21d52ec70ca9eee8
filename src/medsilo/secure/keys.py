"""Key agreement and share encryption: X25519, HKDF-SHA256 and AES-256-GCM (``cryptography``).

Each site holds two X25519 key pairs per round: ``c`` (its agreement with site ``j`` keys the
AES-GCM channel over which shares travel through the coordinator, which relays ciphertexts it
cannot read) and ``s`` (its agreement with site ``j`` seeds the pairwise mask ``PRG(s_ij)``).
Every derived key is bound by HKDF's ``info`` to its purpose and to a round label, so keys of
different rounds or purposes never coincide. The sealed record authenticates sender and
recipient (as associated data and inside the plaintext), so a relayed ciphertext that was
altered, truncated or redirected fails to open.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from medsilo.secure.messages import SEALED_SHARE_BYTES
from medsilo.secure.prg import derive_seed
from medsilo.secure.protocol import SecAggError
from medsilo.secure.shamir import SHARE_BYTES

_PAIR = struct.Struct("<II")


def private_bytes(key: X25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def public_bytes(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def agree(private: X25519PrivateKey | bytes, public: bytes, info: bytes) -> bytes:
    """``HKDF(X25519(private, public), info)``: the same 32 bytes on both sides."""
    key = X25519PrivateKey.from_private_bytes(private) if isinstance(private, bytes) else private
    return derive_seed(key.exchange(X25519PublicKey.from_public_bytes(public)), info)


def seal_shares(
    channel_key: bytes, sender: int, recipient: int, sk_share: bytes, b_share: bytes
) -> bytes:
    """AES-GCM record of ``(sender, recipient, share of s_SK, share of b)``."""
    nonce = os.urandom(12)
    aad = _PAIR.pack(sender, recipient)
    record = nonce + AESGCM(channel_key).encrypt(nonce, aad + sk_share + b_share, aad)
    assert len(record) == SEALED_SHARE_BYTES
    return record


def open_shares(
    channel_key: bytes, sender: int, recipient: int, record: bytes
) -> tuple[bytes, bytes]:
    """``(share of s_SK, share of b)`` from a sealed record; :class:`SecAggError` if forged."""
    aad = _PAIR.pack(sender, recipient)
    try:
        plain = AESGCM(channel_key).decrypt(record[:12], record[12:], aad)
    except (InvalidTag, ValueError):
        raise SecAggError(
            f"the shares relayed from site {sender} to site {recipient} fail authentication "
            "(tampered or misrouted); the site refuses to continue the round"
        ) from None
    if plain[: _PAIR.size] != aad or len(plain) != _PAIR.size + 2 * SHARE_BYTES:
        raise SecAggError(f"sealed shares from site {sender} name the wrong parties")
    body = plain[_PAIR.size :]
    return body[:SHARE_BYTES], body[SHARE_BYTES:]
