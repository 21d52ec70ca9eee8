"""Balanced accuracy: the mean of sensitivity and specificity, so a model that calls everyone
healthy scores 0.5 however rare the disease (per class against the rest, macro-averaged)."""

from __future__ import annotations

from typing import ClassVar

from medsilo.metrics.base import FloatArray
from medsilo.metrics.score_histogram import ratio
from medsilo.metrics.threshold import ThresholdMetric


class BalancedAccuracy(ThresholdMetric):
    name: ClassVar[str] = "balanced_accuracy"

    def per_column(
        self, tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
    ) -> FloatArray:
        return (ratio(tp, tp + fn) + ratio(tn, tn + fp)) / 2
