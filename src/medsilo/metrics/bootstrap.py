"""95% bootstrap confidence intervals at the end of a run, without pooling predictions.

A bootstrap needs the per-patient predictions, which never leave a site. So each site
resamples *its own* test rows with replacement (``replicates`` times, as many rows as it has)
and sends, per replicate, only the StateSet of the resample (:func:`site_replicates`). The
coordinator adds replicate ``r`` of every site in a scope and values it, giving one bootstrap
distribution per scope (:func:`confidence_intervals`):

* per site: that site's replicates alone (an ordinary bootstrap of its test set);
* pooled: replicate ``r`` merged over all sites. This is a bootstrap *stratified by site*:
  every site keeps its own size in every replicate, which matches how the federation's test
  set is made (each hospital's test set) rather than resampling hospitals' shares;
* leave-one-hospital-out: replicate ``r`` merged over all sites but one.

The interval is the 2.5th and 97.5th percentile of the replicate values (percentile method).
Each site draws from its own stream, seeded by the shared run seed and its name, so reruns
give the same intervals and sites' resamples are independent. Thresholds of the threshold
metrics stay at the operating point chosen on validation data; only the test rows resample.
A replicate whose resample lacks a class gives NaN for metrics that need both and is left
out of that metric's percentiles.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from medsilo.metrics.base import OperatingPoint
from medsilo.metrics.suite import MetricSuite, StateSet

CONFIDENCE = 0.95
POOLED = "pooled"
WITHOUT = "without "  # scope name prefix of leave-one-hospital-out intervals


def site_replicates(
    suite: MetricSuite,
    probabilities: NDArray[np.floating],
    labels: NDArray[np.integer],
    replicates: int,
    seed: int,
    site: str,
) -> list[StateSet]:
    """Site side: the StateSets of ``replicates`` resamples of this site's rows."""
    if replicates < 1:
        raise ValueError(f"replicates must be at least 1, got {replicates}")
    rng = np.random.default_rng([seed, zlib.crc32(site.encode())])
    n = len(labels)
    out = []
    for _ in range(replicates):
        counts = np.bincount(rng.integers(0, n, size=n), minlength=n) if n else np.zeros(0)
        out.append(suite.states(probabilities, labels, weights=counts))
    return out


def percentile_interval(values: Sequence[float] | NDArray[np.float64]) -> tuple[float, float]:
    """The central ``CONFIDENCE`` interval of the defined values (NaN, NaN if none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return float("nan"), float("nan")
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(v, [tail, 100 - tail])
    return float(low), float(high)


def scope_intervals(
    suite: MetricSuite,
    replicates: Mapping[str, Sequence[StateSet]],
    sites: Sequence[str],
    operating_point: OperatingPoint | None,
) -> dict[str, tuple[float, float]]:
    """Per metric, the interval of the replicates merged over ``sites``."""
    counts = {len(replicates[s]) for s in sites}
    if len(counts) != 1:
        raise ValueError(f"sites sent different numbers of replicates: {sorted(counts)}")
    per_metric: dict[str, list[float]] = {name: [] for name in suite.names}
    for r in range(counts.pop()):
        merged = suite.merge(replicates[s][r] for s in sites)
        for name, value in suite.values(merged, operating_point).items():
            per_metric[name].append(value)
    return {name: percentile_interval(v) for name, v in per_metric.items()}


def confidence_intervals(
    suite: MetricSuite,
    replicates: Mapping[str, Sequence[StateSet]],
    operating_point: OperatingPoint | None = None,
) -> dict[str, dict[str, tuple[float, float]]]:
    """Coordinator side: scope -> metric -> (low, high) for every site, ``"pooled"`` and,
    with two or more sites, ``"without <site>"`` for each site."""
    sites = list(replicates)
    if not sites:
        raise ValueError("no site sent bootstrap replicates")
    out = {s: scope_intervals(suite, replicates, [s], operating_point) for s in sites}
    out[POOLED] = scope_intervals(suite, replicates, sites, operating_point)
    if len(sites) > 1:
        for left_out in sites:
            rest = [s for s in sites if s != left_out]
            out[WITHOUT + left_out] = scope_intervals(suite, replicates, rest, operating_point)
    return out
