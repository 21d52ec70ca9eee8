"""The pseudorandom generator that expands a 32-byte seed into a mask vector mod ``2**k``.

AES-256 in counter mode (all-zero nonce, the seed used once per key) from ``cryptography``
encrypts a buffer of zeros; the keystream is read as ``uint32``/``uint64`` with
``numpy.frombuffer`` and reduced mod ``2**k``. With AES-NI this is about 1 ms per million
32-bit values. Seeds come from :func:`derive_seed` (HKDF-SHA256 over an X25519 shared
secret) or are drawn fresh (a site's self-mask seed ``b_i``), so each key is used for one
stream only and reusing the zero nonce is safe.
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from medsilo.secure.fixed_point import Ring, reduce, ring_dtype

SEED_BYTES = 32
_NONCE = bytes(16)


def derive_seed(shared_secret: bytes, info: bytes) -> bytes:
    """A 32-byte key from a Diffie-Hellman shared secret, bound to ``info`` (purpose, round)."""
    return HKDF(algorithm=hashes.SHA256(), length=SEED_BYTES, salt=None, info=info).derive(
        shared_secret
    )


class MaskPRG:
    """Expands seeds into ``count`` values mod ``2**bits``; reuses one zero buffer."""

    def __init__(self, count: int, bits: int) -> None:
        self.count = count
        self.bits = bits
        self.dtype = ring_dtype(bits)
        self.nbytes = count * np.dtype(self.dtype).itemsize
        self._zeros = bytes(self.nbytes)

    def expand(self, seed: bytes) -> Ring:
        if len(seed) != SEED_BYTES:
            raise ValueError(f"a PRG seed has {SEED_BYTES} bytes, got {len(seed)}")
        encryptor = Cipher(algorithms.AES(seed), modes.CTR(_NONCE)).encryptor()
        buf = bytearray(self.nbytes + 15)  # update_into needs block-size slack
        encryptor.update_into(self._zeros, buf)
        values = np.frombuffer(buf, dtype=self.dtype, count=self.count)
        return reduce(values, self.bits)

    def add_into(self, acc: Ring, seed: bytes, sign: int = 1) -> None:
        """``acc += sign * PRG(seed)`` mod ``2**bits``, in place."""
        mask = self.expand(seed)
        if sign >= 0:
            np.add(acc, mask, out=acc)
        else:
            np.subtract(acc, mask, out=acc)
        reduce(acc, self.bits)
