"""Metrics of the decision at an operating threshold, from the merged score histogram.

The confusion counts at the threshold come from the histogram's tail sums
(:func:`~medsilo.metrics.score_histogram.confusion_at`); the threshold itself is chosen on
validation states (:mod:`medsilo.metrics.operating_point`) and defaults to probability 0.5.
Multiclass tasks score each class against the rest at its own threshold and macro-average.
"""

from __future__ import annotations

from abc import abstractmethod

from medsilo.metrics.base import FloatArray, MetricState, OperatingPoint
from medsilo.metrics.score_histogram import HistogramMetric, confusion_at, macro


class ThresholdMetric(HistogramMetric):
    def value(self, state: MetricState, operating_point: OperatingPoint | None = None) -> float:
        return macro(self.per_column(*confusion_at(state, operating_point)))

    @abstractmethod
    def per_column(
        self, tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
    ) -> FloatArray:
        """The metric per one-vs-rest column from its confusion counts (NaN if undefined)."""
