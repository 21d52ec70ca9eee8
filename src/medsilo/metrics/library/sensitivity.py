"""Sensitivity (recall, true-positive rate): the share of diseased patients flagged."""

from __future__ import annotations

from typing import ClassVar

from medsilo.metrics.base import FloatArray
from medsilo.metrics.score_histogram import ratio
from medsilo.metrics.threshold import ThresholdMetric


class Sensitivity(ThresholdMetric):
    name: ClassVar[str] = "sensitivity"

    def per_column(
        self, tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
    ) -> FloatArray:
        return ratio(tp, tp + fn)
