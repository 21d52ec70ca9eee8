"""Every built-in metric against scikit-learn on the same predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    recall_score,
    roc_auc_score,
)

from medsilo.metrics.base import OperatingPoint
from medsilo.metrics.library.calibration_error import CALIBRATION_BINS
from medsilo.metrics.score_histogram import edge_probability
from medsilo.metrics.suite import MetricSuite
from tests.metrics.helpers import ALL, binary_predictions, multiclass_predictions


def test_binary_metrics_match_scikit_learn() -> None:
    p, y = binary_predictions(3000, seed=1)
    suite = MetricSuite.build(ALL)
    threshold = edge_probability(520)  # a bin edge: the binned decision is then exact
    got = suite.values(suite.states(p, y), OperatingPoint((threshold,)))
    decided = (p >= threshold).astype(int)
    assert got["auroc"] == pytest.approx(roc_auc_score(y, p), abs=2e-4)
    assert got["auprc"] == pytest.approx(average_precision_score(y, p), abs=2e-3)
    assert got["sensitivity"] == pytest.approx(recall_score(y, decided))
    assert got["specificity"] == pytest.approx(recall_score(1 - y, 1 - decided))
    assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, decided))
    assert got["f1"] == pytest.approx(f1_score(y, decided))
    assert got["brier"] == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert got["accuracy"] == pytest.approx(accuracy_score(y, p > 0.5))


def test_threshold_metrics_default_to_probability_half() -> None:
    p, y = binary_predictions(500, seed=2)
    suite = MetricSuite.build(["sensitivity", "specificity"])
    got = suite.values(suite.states(p, y))
    decided = (p >= 0.5).astype(int)
    assert got["sensitivity"] == pytest.approx(recall_score(y, decided))
    assert got["specificity"] == pytest.approx(recall_score(1 - y, 1 - decided))


def test_expected_calibration_error_matches_calibration_curve() -> None:
    p, y = binary_predictions(2000, seed=3, spread=0.8)
    suite = MetricSuite.build(["ece"])
    got = suite.values(suite.states(p, y))["ece"]
    observed, predicted = calibration_curve(y, p, n_bins=CALIBRATION_BINS, strategy="uniform")
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    counts = np.histogram(p, bins=edges)[0]
    reference = float(np.sum(counts[counts > 0] * np.abs(observed - predicted)) / len(p))
    assert got == pytest.approx(reference, rel=1e-9)
    assert got > 0.01  # under-confident scores: a real calibration gap was measured


def test_multiclass_one_vs_rest_macro_averages() -> None:
    classes = 4
    p, y = multiclass_predictions(4000, classes, seed=4)
    suite = MetricSuite.build(ALL)
    cuts = [480, 500, 510, 530]
    thresholds = tuple(edge_probability(c) for c in cuts)
    got = suite.values(suite.states(p, y), OperatingPoint(thresholds))
    onehot = np.eye(classes)[y]
    decided = p >= np.array(thresholds)
    assert got["auroc"] == pytest.approx(
        roc_auc_score(y, p, multi_class="ovr", average="macro"), abs=2e-4
    )
    assert got["auprc"] == pytest.approx(
        average_precision_score(onehot, p, average="macro"), abs=5e-3
    )
    sens = [recall_score(onehot[:, k], decided[:, k]) for k in range(classes)]
    spec = [recall_score(1 - onehot[:, k], ~decided[:, k]) for k in range(classes)]
    assert got["sensitivity"] == pytest.approx(np.mean(sens))
    assert got["specificity"] == pytest.approx(np.mean(spec))
    assert got["balanced_accuracy"] == pytest.approx((np.mean(sens) + np.mean(spec)) / 2)
    assert got["f1"] == pytest.approx(f1_score(onehot, decided, average="macro"))
    reference_brier = brier_score_loss(y, p, labels=list(range(classes)), scale_by_half=False)
    assert got["brier"] == pytest.approx(reference_brier, rel=1e-12)
    assert got["accuracy"] == pytest.approx(accuracy_score(y, p.argmax(axis=1)))


def test_multiclass_ece_uses_top_label_confidence() -> None:
    p, y = multiclass_predictions(1000, 3, seed=5)
    suite = MetricSuite.build(["ece"])
    got = suite.values(suite.states(p, y))["ece"]
    confidence, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    bins = np.clip(np.digitize(confidence, edges[1:-1]), 0, CALIBRATION_BINS - 1)
    gap = sum(
        abs(correct[bins == b].sum() - confidence[bins == b].sum()) for b in range(CALIBRATION_BINS)
    )
    assert got == pytest.approx(gap / len(y), rel=1e-9)


def test_undefined_values_are_nan() -> None:
    suite = MetricSuite.build(["auroc", "sensitivity", "specificity", "brier"])
    only_negatives = suite.values(suite.states(np.array([0.2, 0.7]), np.array([0, 0])))
    assert np.isnan(only_negatives["auroc"])
    assert np.isnan(only_negatives["sensitivity"])
    assert only_negatives["specificity"] == 0.5
    empty = suite.values(suite.states(np.zeros(0), np.zeros(0, dtype=np.int64)))
    assert all(np.isnan(v) for v in empty.values())
