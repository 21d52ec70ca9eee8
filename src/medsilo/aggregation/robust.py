"""Byzantine-robust aggregation rules, pure numpy on flattened updates.

Every rule takes ``X``, an ``(n, d)`` array with one flattened site update per row, and
either picks rows (Krum, Multi-Krum), rescales rows (norm bounding) or replaces the mean by a
coordinate-wise robust statistic (median, trimmed mean, Bulyan). ``f`` is the number of
Byzantine sites a rule is asked to tolerate.

* Krum (Blanchard et al. 2017): the row whose ``n - f - 2`` nearest neighbours are closest in
  squared l2 distance; needs ``n >= 2f + 3``.
* Multi-Krum: the ``m`` rows with the lowest Krum scores (``m = n - f`` by default); they
  are then averaged by the algorithm's own aggregation.
* Coordinate-wise median and trimmed mean (Yin et al. 2018): per coordinate, the median, or
  the mean after dropping the ``b`` smallest and ``b`` largest values.
* Norm bounding (Sun et al. 2019): each row scaled down to l2 norm at most ``max_norm``.
* Bulyan (El Mhamdi et al. 2018): ``theta = n - 2f`` rows chosen by repeated Krum, then per
  coordinate the mean of the ``theta - 2f`` values closest to the median; needs
  ``n >= 4f + 3``.

Rules that pick or average ignore sample counts (a Byzantine site could lie about them);
the rows Multi-Krum keeps are averaged by the algorithm, which may weight them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.float64]
Vector = NDArray[np.float64]


def _check(x: Matrix) -> None:
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"expected an (n, d) array with n >= 1 updates, got shape {x.shape}")


def krum_min_updates(f: int) -> int:
    """Krum and Multi-Krum need ``n - f - 2 >= 1`` neighbours per score: ``n >= 2f + 3``."""
    return 2 * f + 3


def bulyan_min_updates(f: int) -> int:
    return 4 * f + 3


def pairwise_sq_distances(x: Matrix) -> Matrix:
    """``D[i, j] = ||x_i - x_j||^2``, computed from differences (no cancellation)."""
    _check(x)
    n = x.shape[0]
    d = np.zeros((n, n))
    for i in range(n):
        diff = x[i + 1 :] - x[i]
        d[i, i + 1 :] = np.einsum("ij,ij->i", diff, diff)
    return d + d.T


def krum_scores(x: Matrix, f: int) -> Vector:
    """Each row's sum of squared distances to its ``n - f - 2`` nearest other rows."""
    n = x.shape[0]
    if f < 0 or n < krum_min_updates(f):
        raise ValueError(f"Krum with f={f} needs at least {krum_min_updates(f)} updates, got {n}")
    d = pairwise_sq_distances(x)
    closest = n - f - 2
    others = np.sort(d + np.diag(np.full(n, np.inf)), axis=1)[:, :closest]
    return others.sum(axis=1)  # type: ignore[no-any-return]


def krum(x: Matrix, f: int) -> int:
    """Index of the Krum choice (the lowest score; ties go to the lower index)."""
    return int(np.argmin(krum_scores(x, f)))


def multi_krum(x: Matrix, f: int, m: int | None = None) -> list[int]:
    """Indices (ascending) of the ``m`` rows with the lowest Krum scores."""
    n = x.shape[0]
    m = n - f if m is None else m
    if not 1 <= m <= n:
        raise ValueError(f"Multi-Krum must keep between 1 and {n} updates, got m={m}")
    order = np.argsort(krum_scores(x, f), kind="stable")
    return sorted(int(i) for i in order[:m])


def coordinate_median(x: Matrix) -> Vector:
    _check(x)
    return np.median(x, axis=0)


def trim_count(n: int, trim: float) -> int:
    """Values dropped from each end: ``floor(trim * n)``, as ``scipy.stats.trim_mean``."""
    if not 0 <= trim < 0.5:
        raise ValueError(f"trim must be in [0, 0.5), got {trim}")
    return int(np.floor(trim * n))


def trimmed_mean(x: Matrix, trim: float) -> Vector:
    """Per coordinate, the mean after dropping the ``floor(trim * n)`` lowest and highest."""
    _check(x)
    b = trim_count(x.shape[0], trim)
    s = np.sort(x, axis=0)
    return s[b : x.shape[0] - b].mean(axis=0)  # type: ignore[no-any-return]


def norm_bound(x: Matrix, max_norm: float) -> Matrix:
    """Rows scaled down to l2 norm at most ``max_norm`` (shorter rows are left alone)."""
    _check(x)
    if max_norm <= 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    norms = np.linalg.norm(x, axis=1)
    factor = np.minimum(1.0, max_norm / np.maximum(norms, np.finfo(np.float64).tiny))
    return x * factor[:, None]  # type: ignore[no-any-return]


def bulyan_selection(x: Matrix, f: int) -> list[int]:
    """The ``n - 2f`` rows Bulyan keeps: Krum applied repeatedly, removing each choice."""
    n = x.shape[0]
    if f < 0 or n < bulyan_min_updates(f):
        raise ValueError(
            f"Bulyan with f={f} needs at least {bulyan_min_updates(f)} updates, got {n}"
        )
    remaining = list(range(n))
    chosen: list[int] = []
    d = pairwise_sq_distances(x)
    while len(chosen) < n - 2 * f:
        k = len(remaining)
        # Krum over the remaining rows; once fewer than 2f + 3 remain, the scores use
        # max(1, k - f - 2) neighbours (the standard Bulyan recursion keeps going).
        closest = max(1, k - f - 2)
        sub = d[np.ix_(remaining, remaining)] + np.diag(np.full(k, np.inf))
        scores = np.sort(sub, axis=1)[:, :closest].sum(axis=1) if k > 1 else np.zeros(1)
        pick = remaining[int(np.argmin(scores))]
        chosen.append(pick)
        remaining.remove(pick)
    return sorted(chosen)


def bulyan(x: Matrix, f: int) -> Vector:
    """Per coordinate, the mean of the ``theta - 2f`` selected values closest to the median."""
    sel = x[bulyan_selection(x, f)]
    theta = sel.shape[0]
    beta = theta - 2 * f
    med = np.median(sel, axis=0)
    closest = np.argsort(np.abs(sel - med), axis=0, kind="stable")[:beta]
    return np.take_along_axis(sel, closest, axis=0).mean(axis=0)  # type: ignore[no-any-return]
