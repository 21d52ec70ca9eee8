"""The second pass's leakage proxies of one transmitted update, and the site weighting.

docs/ccpgd.md §10 fixes three proxies, each computed per transmitted update (as the
coordinator decoded it) and then averaged with the site weighting below. They are a
sensitivity check, not evidence: the primary measures are attacks
(:mod:`medsilo.bench.paper_leakage`).

* ``R = 1 - H(p)/log d`` (§1's orientation: concentration = leakage) is
  :func:`medsilo.confidential.leakage.leakage_risk`, the number the engine records;
* ``R' = H(p)/log d`` (the opposite orientation: spread = leakage), :func:`spread`;
* support leakage: the information in the pattern of nonzeros on the wire,
  ``sum over tensors of log2 C(n, k)`` bits (``n`` entries, ``k`` nonzeros) divided by the
  update's ``d`` entries, :func:`support_bits_per_param`. A tensor with no zero (dense) or
  all zeros reveals no pattern and scores 0.

Site weighting: a setting's leakage is the mean of the sites' values weighted by
``1 + kappa * e_i`` (``e_i``: the site's TEE-exploit indicator), so an exposed TEE counts
``1 + kappa`` times (:func:`site_weighted_mean`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from medsilo.types import Weights, flatten


def log2_binomial(n: int, k: int) -> float:
    """``log2 C(n, k)`` without forming the (huge) integer."""
    if not 0 <= k <= n:
        raise ValueError(f"C(n, k) needs 0 <= k <= n, got n={n}, k={k}")
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(2)


def support_bits_per_param(update: Weights) -> float:
    """Bits of nonzero pattern per coordinate: ``sum_t log2 C(n_t, k_t) / d``."""
    d = sum(int(t.size) for t in update)
    if d == 0:
        raise ValueError("support leakage of an empty update")
    bits = sum(log2_binomial(int(t.size), int(np.count_nonzero(t))) for t in update)
    return bits / d


def spread(update: Weights) -> float:
    """``R' = H(p)/log d`` over the magnitudes (``0 log 0 = 0``); 0 for an all-zero update,
    which carries nothing to spread."""
    a = np.abs(flatten(update).astype(np.float64))
    total = float(a.sum())
    if a.size <= 1 or total == 0.0:
        return 0.0
    p = a[a > 0] / total
    return float(min(1.0, max(0.0, -(p * np.log(p)).sum() / math.log(a.size))))


def site_weights(indicators: Mapping[str, int], kappa: float) -> dict[str, float]:
    """``1 + kappa * e_i`` per site."""
    if kappa < 0:
        raise ValueError(f"kappa must be >= 0, got {kappa}")
    return {site: 1.0 + kappa * e for site, e in indicators.items()}


def site_weighted_mean(values: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """Mean of the sites' ``values`` weighted by ``weights`` (sites with a NaN value, i.e.
    nothing measured, are left out); NaN when no site has a value."""
    kept = {s: v for s, v in values.items() if not math.isnan(v)}
    if not kept:
        return math.nan
    missing = sorted(set(kept) - set(weights))
    if missing:
        raise ValueError(f"no site weight for {missing}")
    total = sum(weights[s] for s in kept)
    return sum(weights[s] * v for s, v in kept.items()) / total
