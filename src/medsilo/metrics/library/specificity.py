"""Specificity (true-negative rate): the share of healthy patients left unflagged."""

from __future__ import annotations

from typing import ClassVar

from medsilo.metrics.base import FloatArray
from medsilo.metrics.score_histogram import ratio
from medsilo.metrics.threshold import ThresholdMetric


class Specificity(ThresholdMetric):
    name: ClassVar[str] = "specificity"

    def per_column(
        self, tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
    ) -> FloatArray:
        return ratio(tn, tn + fp)
