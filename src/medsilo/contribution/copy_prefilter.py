"""Which earlier updates of a round could an update be a copy of, without comparing them all.

The copy rule (:mod:`medsilo.contribution.free_riders`) asks, for each update ``x``, whether
an earlier update ``y`` of the round lies within ``equal_tolerance`` of it:
``||x - y|| <= tol * ||x||``. Comparing every pair in full costs ``O(n^2 d)``. Two lower
bounds on ``||x - y||`` are nearly free: the triangle inequality gives
``| ||x|| - ||y|| | <= ||x - y||``, and the distance over a few fixed coordinates is at most
the distance over all of them. A pair that fails either bound cannot pass the full test, so
only the pairs left (in practice the true copies) are compared in full and the flags are
exactly those of the all-pairs comparison.

The bound is widened by ``ROUNDING_SLACK`` of the two norms so that rounding in the float64
norms can never drop a pair the full test would accept; that only lets a few more pairs
through to the full test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Coordinates (spread evenly over the vector) whose distance is the second, cheap bound.
SKETCH_COORDINATES = 32
#: Relative widening of the bounds: far above float64 rounding in a norm, far below the
#: gap between two honest updates' norms.
ROUNDING_SLACK = 1e-8


@dataclass(frozen=True)
class CopyPrefilter:
    """The round's update norms and a few coordinates of each update, in arrival order."""

    norms: np.ndarray
    sketches: np.ndarray

    @classmethod
    def of(cls, flat: list[np.ndarray], norms: list[float]) -> CopyPrefilter:
        size = int(flat[0].size) if flat else 0
        picks = np.unique(np.linspace(0, size - 1, num=min(size, SKETCH_COORDINATES)).astype(int))
        sketches = np.array([x[picks] for x in flat], dtype=np.float64).reshape(
            len(flat), picks.size
        )
        return cls(np.asarray(norms, dtype=np.float64), sketches)

    def candidates(self, i: int, tolerance: float) -> list[int]:
        """The updates ``j < i`` with a non-zero norm that could lie within ``tolerance``
        (relative to update ``i``'s norm) of update ``i``, ascending."""
        norm = self.norms[i]
        earlier = self.norms[:i]
        bound = tolerance * norm * (1 + ROUNDING_SLACK) + ROUNDING_SLACK * (norm + earlier)
        close = np.flatnonzero((earlier > 0) & (np.abs(earlier - norm) <= bound))
        gaps = np.linalg.norm(self.sketches[close] - self.sketches[i], axis=1)
        return [int(j) for j in close[gaps <= bound[close]]]
