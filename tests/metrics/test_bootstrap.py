"""Bootstrap intervals from per-site replicate states: per site, pooled (stratified by site)
and leave-one-hospital-out."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medsilo.metrics.bootstrap import (
    POOLED,
    WITHOUT,
    confidence_intervals,
    percentile_interval,
    site_replicates,
)
from medsilo.metrics.suite import MetricSuite
from tests.metrics.helpers import binary_predictions

SEED = 3


def _sites() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        name: binary_predictions(n, seed)
        for name, n, seed in [("a", 120, 1), ("b", 80, 2), ("c", 200, 3)]
    }


def test_replicates_are_reproducible_and_independent_per_site() -> None:
    suite = MetricSuite.build(["auroc", "brier"])
    p, y = binary_predictions(100, seed=4)
    first = site_replicates(suite, p, y, 5, SEED, "a")
    again = site_replicates(suite, p, y, 5, SEED, "a")
    other = site_replicates(suite, p, y, 5, SEED, "b")
    value = [suite.values(s)["brier"] for s in first]
    assert value == [suite.values(s)["brier"] for s in again]
    assert value != [suite.values(s)["brier"] for s in other]
    assert len(set(value)) == 5


def test_pooled_interval_is_a_bootstrap_stratified_by_site() -> None:
    suite = MetricSuite.build(["auroc", "sensitivity"])
    sites = _sites()
    replicates = {s: site_replicates(suite, p, y, 40, SEED, s) for s, (p, y) in sites.items()}
    intervals = confidence_intervals(suite, replicates)
    assert set(intervals) == {"a", "b", "c", POOLED, WITHOUT + "a", WITHOUT + "b", WITHOUT + "c"}
    # Redo the pooled bootstrap by hand: replicate r resamples each site's rows with the
    # site's own stream, and the pooled value is the AUROC of all resampled rows together.
    streams = {s: np.random.default_rng([SEED, zlib.crc32(s.encode())]) for s in sites}
    by_hand = []
    for _ in range(40):
        ps, ys = [], []
        for s, (p, y) in sites.items():
            idx = streams[s].integers(0, len(y), size=len(y))
            ps.append(p[idx])
            ys.append(y[idx])
        by_hand.append(roc_auc_score(np.concatenate(ys), np.concatenate(ps)))
    low, high = percentile_interval(by_hand)
    assert intervals[POOLED]["auroc"] == pytest.approx((low, high), abs=2e-3)
    point = suite.values(suite.merge(suite.states(*sites[s]) for s in sites))["auroc"]
    assert intervals[POOLED]["auroc"][0] < point < intervals[POOLED]["auroc"][1]
    # Fewer rows, wider interval: site b (80 rows) against the pooled 400.
    width = {k: v["auroc"][1] - v["auroc"][0] for k, v in intervals.items()}
    assert width["b"] > width[POOLED]


def test_percentile_interval_skips_undefined_replicates() -> None:
    assert percentile_interval([np.nan, 1.0, 2.0, 3.0]) == pytest.approx((1.05, 2.95))
    assert all(np.isnan(percentile_interval([np.nan])))


def test_sites_must_send_equal_replicate_counts() -> None:
    suite = MetricSuite.build(["brier"])
    p, y = binary_predictions(30, seed=5)
    replicates = {
        "a": site_replicates(suite, p, y, 3, 0, "a"),
        "b": site_replicates(suite, p, y, 4, 0, "b"),
    }
    with pytest.raises(ValueError, match="different numbers of replicates"):
        confidence_intervals(suite, replicates)
    with pytest.raises(ValueError, match="at least 1"):
        site_replicates(suite, p, y, 0, 0, "a")
