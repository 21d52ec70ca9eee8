"""Thresholds chosen on validation states, applied to test states."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import recall_score, roc_curve

from medsilo.metrics.base import OperatingPoint
from medsilo.metrics.operating_point import TargetSensitivityRule, YoudenRule
from medsilo.metrics.score_histogram import BINS, bin_index, cut_of, edge_probability
from medsilo.metrics.suite import MetricSuite
from tests.metrics.helpers import binary_predictions, multiclass_predictions


def _sens_spec(p: np.ndarray, y: np.ndarray, threshold: float) -> tuple[float, float]:
    decided = (p >= threshold).astype(int)
    return recall_score(y, decided), recall_score(1 - y, 1 - decided)


def test_youden_threshold_maximises_j_on_validation() -> None:
    p, y = binary_predictions(2000, seed=12)
    suite = MetricSuite.build(["sensitivity", "specificity"], rule=YoudenRule())
    point = suite.operating_point(suite.states(p, y))
    assert point is not None
    sens, spec = _sens_spec(p, y, point.thresholds[0])
    fpr, tpr, _ = roc_curve(y, p)
    best_exact = float(np.max(tpr - fpr))
    # The best J over bin edges is the exact best up to the rows sharing a bin with the cut.
    assert sens + spec - 1 == pytest.approx(best_exact, abs=3e-3)
    assert sens + spec - 1 <= best_exact + 1e-12


def test_target_sensitivity_is_the_highest_threshold_reaching_it() -> None:
    p, y = binary_predictions(2000, seed=13)
    suite = MetricSuite.build(
        ["sensitivity"], rule=TargetSensitivityRule(rule="target_sensitivity", value=0.9)
    )
    point = suite.operating_point(suite.states(p, y))
    assert point is not None
    threshold = point.thresholds[0]
    assert _sens_spec(p, y, threshold)[0] >= 0.9
    next_edge = edge_probability(cut_of(threshold) + 1)
    assert _sens_spec(p, y, next_edge)[0] < 0.9


def test_validation_threshold_is_applied_to_test_states() -> None:
    p_val, y_val = binary_predictions(1500, seed=14)
    p_test, y_test = binary_predictions(800, seed=15)
    suite = MetricSuite.build(["sensitivity", "specificity"], rule=YoudenRule())
    point = suite.operating_point(suite.states(p_val, y_val))
    assert point is not None
    got = suite.values(suite.states(p_test, y_test), point)
    sens, spec = _sens_spec(p_test, y_test, point.thresholds[0])
    assert (got["sensitivity"], got["specificity"]) == pytest.approx((sens, spec))


def test_multiclass_gets_one_threshold_per_class() -> None:
    p, y = multiclass_predictions(1200, 3, seed=16)
    suite = MetricSuite.build(["sensitivity"])
    point = suite.operating_point(suite.states(p, y))
    assert point is not None and len(point.thresholds) == 3
    assert all(0 < t < 1 for t in point.thresholds)


def test_column_without_both_classes_keeps_default_threshold() -> None:
    suite = MetricSuite.build(["sensitivity"])
    point = suite.operating_point(suite.states(np.array([0.1, 0.9]), np.array([1, 1])))
    assert point == OperatingPoint((0.5,))
    assert suite.operating_point(None) is None


def test_a_threshold_flags_exactly_the_bins_from_its_cut_on() -> None:
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(scale=3, size=2000), rng.uniform(-60, 60, size=2000)])
    p = np.concatenate([1 / (1 + np.exp(-z)), [0.0, 1.0, 0.5]])
    bins = bin_index(p)
    for cut in [0, 1, 250, 437, 500, 501, 800, 990, BINS - 1, BINS]:
        threshold = edge_probability(cut)
        assert np.array_equal(p >= threshold, bins >= cut_of(threshold))
    assert edge_probability(BINS // 2) == 0.5
    assert [cut_of(edge_probability(c)) for c in (0, 1, 437, 500, 900)] == [0, 1, 437, 500, 900]
