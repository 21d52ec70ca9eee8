"""Metrics by name; a metric defined outside the package joins without editing any list."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from medsilo.metrics.base import Metric, MetricState, OperatingPoint, Predictions
from medsilo.metrics.registry import UnknownMetricError, builtin_metrics
from medsilo.metrics.suite import MetricSuite
from medsilo.metrics.threshold import ThresholdMetric
from tests.metrics.helpers import ALL, binary_predictions


class Prevalence(Metric):
    """Share of positive rows: a metric written in one file outside medsilo.metrics."""

    name: ClassVar[str] = "prevalence"

    def state(self, predictions: Predictions) -> MetricState:
        w = predictions.weights
        positives = float(w[predictions.labels == 1].sum())
        return {"positives": np.array(positives), "count": np.array(float(w.sum()))}

    def value(self, state: MetricState, operating_point: OperatingPoint | None = None) -> float:
        return float(state["positives"] / state["count"])


def test_builtin_metrics_are_discovered() -> None:
    assert sorted(builtin_metrics().names) == sorted(ALL)


def test_external_metric_joins_a_registry_and_merges() -> None:
    registry = builtin_metrics().with_metrics(Prevalence)
    suite = MetricSuite.build(["auroc", "prevalence"], lead="prevalence", registry=registry)
    assert suite.names == ["prevalence", "auroc"]
    p, y = binary_predictions(400, seed=11)
    merged = suite.merge([suite.states(p[:150], y[:150]), suite.states(p[150:], y[150:])])
    assert suite.values(merged)["prevalence"] == pytest.approx(y.mean())
    assert "prevalence" not in builtin_metrics().names  # the built-in registry is untouched


def test_unknown_metric_lists_the_known_ones() -> None:
    with pytest.raises(
        UnknownMetricError,
        match=r"unknown metric\(s\) \['aucroc'\]; known metrics: accuracy, auprc",
    ):
        MetricSuite.build(["aucroc"])
    with pytest.raises(UnknownMetricError, match="repeated"):
        MetricSuite.build(["f1", "f1"])


def test_name_clash_and_abstract_classes_are_refused() -> None:
    class OtherAUROC(Prevalence):
        name: ClassVar[str] = "auroc"

    with pytest.raises(ValueError, match="already taken"):
        builtin_metrics().with_metrics(OtherAUROC)
    with pytest.raises(TypeError, match="not a concrete Metric"):
        builtin_metrics().with_metrics(ThresholdMetric)
