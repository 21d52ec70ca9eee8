"""SecAgg+'s communication graph: a Harary graph ``H(n, k)`` over a public random order.

Bell et al. (CCS 2020) let each site mask with, and secret-share to, only its ``k``
neighbours in a ``k``-regular graph: ``H(n, k)`` (``k`` even) places the ``n`` sites on a
circle and joins each to the ``k / 2`` nearest on either side; the order of the sites on the
circle is a random permutation, so a site's neighbours are a uniformly random ``k``-subset
of the others and an adversary who picks corrupt sites before the round cannot pick them
next to a victim. Every party must compute the same graph without talking, so the order is
derived from the round's public label (run name, round number): sites are sorted by
``SHA-256("medsilo-secagg/graph/" + label + id)``, which needs no PRNG whose stream could
differ between library versions on different machines. With ``k >= n - 1`` every site is
every other's neighbour (Bonawitz et al.'s complete graph).

Site ids are ``1..n`` (the cohort's positions + 1), as in the rest of the protocol.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache


@lru_cache(maxsize=16)
def harary_neighbours(cohort: int, k: int, label: bytes) -> tuple[frozenset[int], ...]:
    """``out[i - 1]``: the neighbours of site ``i`` (itself excluded) in ``H(cohort, k)``."""
    if cohort < 2 or k < 1:
        raise ValueError(f"a neighbour graph needs >= 2 sites and k >= 1, got {cohort}, {k}")
    if k >= cohort - 1:
        everyone = frozenset(range(1, cohort + 1))
        return tuple(everyone - {i} for i in range(1, cohort + 1))
    if k % 2:
        raise ValueError(f"a Harary graph H(n, k) below n - 1 needs an even k, got {k}")
    prefix = b"medsilo-secagg/graph/" + label + b"/"
    order = sorted(
        range(1, cohort + 1),
        key=lambda i: hashlib.sha256(prefix + i.to_bytes(4, "big")).digest(),
    )
    out: list[frozenset[int]] = [frozenset()] * cohort
    for pos, site in enumerate(order):
        out[site - 1] = frozenset(
            order[(pos + step) % cohort] for d in range(1, k // 2 + 1) for step in (d, -d)
        )
    return tuple(out)
