"""F1: the harmonic mean of precision and sensitivity, ``2TP / (2TP + FP + FN)``, per class
against the rest and macro-averaged for multiclass tasks."""

from __future__ import annotations

from typing import ClassVar

from medsilo.metrics.base import FloatArray
from medsilo.metrics.score_histogram import ratio
from medsilo.metrics.threshold import ThresholdMetric


class F1(ThresholdMetric):
    name: ClassVar[str] = "f1"

    def per_column(
        self, tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
    ) -> FloatArray:
        return ratio(2 * tp, 2 * tp + fp + fn)
