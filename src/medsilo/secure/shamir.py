"""Shamir ``t``-of-``n`` secret sharing over the Mersenne prime field ``GF(2**521 - 1)``.

A secret ``s`` (up to 64 bytes, read as a big-endian integer) is the constant term of a
random polynomial ``f`` of degree ``t - 1``; party ``x`` (``1..n``) gets ``f(x)``. Any ``t``
shares give ``s = sum_j lambda_j f(x_j)`` with Lagrange coefficients at zero
``lambda_j = prod_{m != j} x_m / (x_m - x_j)``; ``t - 1`` shares say nothing about it.
The field is larger than every secret shared here (32-byte seeds and X25519 private keys),
so a secret is shared in one piece. Coefficients come from ``secrets`` (the OS CSPRNG).

Reconstructing many secrets from shares held by the same parties reuses one set of Lagrange
coefficients (:func:`lagrange_at_zero`), which is what the coordinator does when it unmasks
a round: the cost is ``O(t**2)`` once plus ``O(t)`` per secret.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence

PRIME = (1 << 521) - 1
SHARE_BYTES = 66  # ceil(521 / 8)
MAX_SECRET_BYTES = 64


def split(secret: bytes, threshold: int, xs: Sequence[int]) -> dict[int, int]:
    """Shares ``{x: f(x)}`` of ``secret`` for the parties ``xs`` (distinct, in ``1..P-1``)."""
    if len(secret) > MAX_SECRET_BYTES:
        raise ValueError(f"secret too long: {len(secret)} > {MAX_SECRET_BYTES} bytes")
    if not 1 <= threshold <= len(xs):
        raise ValueError(f"threshold must be in [1, {len(xs)}], got {threshold}")
    if len(set(xs)) != len(xs) or any(not 0 < x < PRIME for x in xs):
        raise ValueError("share points must be distinct and non-zero")
    coeffs = [int.from_bytes(secret, "big")] + [
        secrets.randbelow(PRIME) for _ in range(threshold - 1)
    ]
    shares: dict[int, int] = {}
    for x in xs:
        y = 0
        for c in reversed(coeffs):  # Horner
            y = (y * x + c) % PRIME
        shares[x] = y
    return shares


def lagrange_at_zero(xs: Sequence[int]) -> dict[int, int]:
    """``{x_j: lambda_j}`` such that ``f(0) = sum_j lambda_j f(x_j)`` for ``deg f < len(xs)``."""
    if len(set(xs)) != len(xs):
        raise ValueError("share points must be distinct")
    nums, dens = [], []
    for j in xs:
        num, den = 1, 1
        for m in xs:
            if m != j:
                num = num * m % PRIME
                den = den * (m - j) % PRIME
        nums.append(num)
        dens.append(den)
    return {j: n * inv % PRIME for j, n, inv in zip(xs, nums, _inverses(dens), strict=True)}


def _inverses(values: Sequence[int]) -> list[int]:
    """Every ``1 / v`` mod ``PRIME`` with one modular inversion (Montgomery's batch trick):
    SecAgg+ reconstructs each site's secrets from a different set of holders, so the
    coordinator computes one set of Lagrange coefficients per site."""
    prefix = [1]
    for v in values:
        prefix.append(prefix[-1] * v % PRIME)
    inv = pow(prefix[-1], -1, PRIME)
    out = [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = inv * prefix[i] % PRIME
        inv = inv * values[i] % PRIME
    return out


def combine(shares: Mapping[int, int], lagrange: Mapping[int, int], length: int) -> bytes:
    """The secret (``length`` bytes) from shares at exactly the points of ``lagrange``."""
    if set(shares) != set(lagrange):
        raise ValueError("shares and Lagrange coefficients are for different points")
    value = sum(lagrange[x] * y for x, y in shares.items()) % PRIME
    if value >= 1 << (8 * length):
        raise ValueError("shares do not reconstruct a secret of the expected length")
    return value.to_bytes(length, "big")


def reconstruct(shares: Mapping[int, int], length: int) -> bytes:
    """The secret from ``t`` (or more) shares of a degree-``t - 1`` polynomial."""
    return combine(shares, lagrange_at_zero(list(shares)), length)


def share_to_bytes(y: int) -> bytes:
    return y.to_bytes(SHARE_BYTES, "big")


def share_from_bytes(data: bytes) -> int:
    if len(data) != SHARE_BYTES:
        raise ValueError(f"a share has {SHARE_BYTES} bytes, got {len(data)}")
    y = int.from_bytes(data, "big")
    if y >= PRIME:
        raise ValueError("share value outside the field")
    return y
