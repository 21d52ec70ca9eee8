"""The pseudorandom generator that expands a 32-byte seed into a mask vector mod ``2**k``.

AES-256 in counter mode (all-zero nonce, the seed used once per key) from ``cryptography``
encrypts a buffer of zeros; the keystream is read as ``uint32``/``uint64`` with
``numpy.frombuffer`` and reduced mod ``2**k``. With AES-NI this is about 1 ms per million
32-bit values. The keystream is produced and added in chunks of :data:`CHUNK_BYTES`.
Seeds come from :func:`derive_seed` (HKDF-SHA256 over an X25519 shared
secret) or are drawn fresh (a site's self-mask seed ``b_i``), so each key is used for one
stream only and reusing the zero nonce is safe.
"""

from __future__ import annotations

from collections.abc import Iterator

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


#: Keystream bytes generated at a time: masks are added chunk by chunk, so neither a site
#: nor the coordinator ever holds a whole mask vector beside the vector it masks
#: (docs/scale.md, "Large updates"). AES-CTR is a stream cipher, so the values do not
#: depend on the chunk size.
CHUNK_BYTES = 1 << 20


class MaskPRG:
    """Expands seeds into ``count`` values mod ``2**bits``; one chunk of zeros is reused."""

    def __init__(self, count: int, bits: int) -> None:
        self.count = count
        self.bits = bits
        self.dtype = ring_dtype(bits)
        self.itemsize = np.dtype(self.dtype).itemsize
        self.nbytes = count * self.itemsize
        self._chunk = max(1, CHUNK_BYTES // self.itemsize)  # values per chunk
        self._zeros = bytes(min(self.nbytes, self._chunk * self.itemsize))

    def _stream(self, seed: bytes) -> Iterator[tuple[int, Ring]]:
        """``(offset, values)`` chunks of ``PRG(seed)``, each valid until the next one."""
        if len(seed) != SEED_BYTES:
            raise ValueError(f"a PRG seed has {SEED_BYTES} bytes, got {len(seed)}")
        encryptor = Cipher(algorithms.AES(seed), modes.CTR(_NONCE)).encryptor()
        buf = bytearray(len(self._zeros) + 15)  # update_into needs block-size slack
        for start in range(0, self.count, self._chunk):
            n = min(self._chunk, self.count - start)
            encryptor.update_into(memoryview(self._zeros)[: n * self.itemsize], buf)
            yield start, reduce(np.frombuffer(buf, dtype=self.dtype, count=n), self.bits)

    def expand(self, seed: bytes) -> Ring:
        """The whole mask ``PRG(seed)`` as one vector (tests; the protocol adds in place)."""
        out = np.zeros(self.count, dtype=self.dtype)
        self.add_into(out, seed)
        return out

    def add_into(self, acc: Ring, seed: bytes, sign: int = 1) -> None:
        """``acc += sign * PRG(seed)`` mod ``2**bits``, in place, one chunk at a time."""
        op = np.add if sign >= 0 else np.subtract
        for start, mask in self._stream(seed):
            part = acc[start : start + mask.size]
            op(part, mask, out=part)
        reduce(acc, self.bits)
