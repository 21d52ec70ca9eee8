"""Fixed-point encoding of float vectors into integers mod ``2**k`` that sum without overflow.

A site clips every coordinate to ``[-clip, clip]`` and encodes ``q = round(x * scale) mod 2**k``
(two's complement). The sum of ``n`` encodings, taken mod ``2**k``, decodes to the exact sum
of the rounded values as long as that sum lies in ``[-2**(k-1), 2**(k-1))``. The scale is
the largest that guarantees this for ``n`` sites::

    scale = floor((2**(k-1) - 1) / n) / clip       so  n * |round(x * scale)| <= 2**(k-1) - 1

Resolution: each coordinate is off by at most ``0.5 / scale`` after decoding, a sum of ``n``
by at most ``n * 0.5 / scale``. With ``k = 32``, ``n = 100`` and ``clip = 1000`` the step is
``1 / scale = 4.7e-5`` (about 2.3e-3 on a sum of 100, before dividing by the total weight).
Settings whose step would exceed ``clip / 4`` (fewer than 8 levels per sign) are refused.

Integers are stored as ``uint32`` for ``k <= 32`` and ``uint64`` above; the mask
``2**k - 1`` makes any ``k`` work with numpy's wrapping arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Ring = NDArray[np.unsignedinteger]
#: Values encoded or decoded at a time, so that the float64 and int64 temporaries of a
#: large model's vector stay small (docs/scale.md, "Large updates").
CHUNK = 1 << 18


def ring_dtype(bits: int) -> type[np.unsignedinteger]:
    if not 2 <= bits <= 64:
        raise ValueError(f"bits must be in [2, 64], got {bits}")
    return np.uint32 if bits <= 32 else np.uint64


def reduce(values: Ring, bits: int) -> Ring:
    """``values mod 2**bits`` in place (a no-op for 32 and 64 bits)."""
    if bits not in (32, 64):
        np.bitwise_and(values, np.array((1 << bits) - 1, dtype=values.dtype), out=values)
    return values


@dataclass(frozen=True)
class FixedPoint:
    """Encoder for ``num_sites`` vectors clipped to ``[-clip, clip]`` in ``Z_{2**bits}``."""

    bits: int
    clip: float
    num_sites: int

    def __post_init__(self) -> None:
        ring_dtype(self.bits)
        if self.clip <= 0 or self.num_sites < 1:
            raise ValueError(f"need clip > 0 and num_sites >= 1, got {self.clip}, {self.num_sites}")
        if self.max_abs_int < 8:
            raise ValueError(
                f"{self.bits}-bit integers cannot hold the sum of {self.num_sites} sites with "
                f"useful resolution (at most {self.max_abs_int} levels per sign per site); "
                "raise secure_aggregation.bits or lower the number of sites"
            )

    @property
    def dtype(self) -> type[np.unsignedinteger]:
        return ring_dtype(self.bits)

    @property
    def max_abs_int(self) -> int:
        """Largest ``|q|`` one site may send so that ``n`` of them cannot overflow."""
        return ((1 << (self.bits - 1)) - 1) // self.num_sites

    @property
    def scale(self) -> float:
        return self.max_abs_int / self.clip

    @property
    def resolution(self) -> float:
        """Decoding step ``1 / scale``; a decoded coordinate is within half of it."""
        return 1.0 / self.scale

    def encode(self, x: NDArray[np.floating]) -> tuple[Ring, int]:
        """``(encoding, number of clipped coordinates)`` of a float vector."""
        x64 = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(x64)):
            raise ValueError("cannot encode a vector with NaN or Inf")
        clipped = int(np.count_nonzero(np.abs(x64) > self.clip))
        q = np.rint(np.clip(x64, -self.clip, self.clip) * self.scale).astype(np.int64)
        return reduce(q.astype(self.dtype), self.bits), clipped

    def decode(self, total: Ring) -> NDArray[np.float64]:
        """The float value of a sum of at most ``num_sites`` encodings (mod ``2**bits``),
        decoded :data:`CHUNK` values at a time: the only whole-length array made is the
        float64 result (no int64 or boolean copies of the total beside it)."""
        out = np.empty(total.size, dtype=np.float64)
        for start in range(0, total.size, CHUNK):
            part = total[start : start + CHUNK]
            np.divide(self.signed(part), self.scale, out=out[start : start + part.size])
        return out

    def signed(self, total: Ring) -> NDArray[np.int64]:
        """Two's-complement reading of ``total`` mod ``2**bits``."""
        t = reduce(np.array(total, dtype=self.dtype), self.bits).astype(np.int64)
        if self.bits == 64:
            return t  # astype(int64) already wrapped
        half = 1 << (self.bits - 1)
        return np.where(t >= half, t - (1 << self.bits), t)
