"""Area metrics (AUROC, AUPRC) from the merged score histogram.

The bins are the thresholds: walking them from the highest score down, the cumulative
positive and negative counts are the curve's points, and rows that share a bin are ties.
The areas are computed from those points with numpy, exactly as scikit-learn's weighted
``roc_auc_score`` (trapezoids between distinct thresholds) and ``average_precision_score``
(step-wise, no interpolation) compute them on one pseudo-row per non-empty bin and class
weighted by its count; tests/metrics check both against scikit-learn on the raw predictions.
Numpy rather than a scikit-learn call per area because bootstrap intervals take thousands of
them (200 replicates x every scope). Multiclass tasks average the one-vs-rest areas over the
classes that have both positives and negatives (macro average).
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np

from medsilo.metrics.base import FloatArray, MetricState, OperatingPoint
from medsilo.metrics.score_histogram import HistogramMetric, macro


class RankingMetric(HistogramMetric):
    """A threshold-free area under a curve built from the score histogram."""

    def value(self, state: MetricState, operating_point: OperatingPoint | None = None) -> float:
        areas = [
            self._column_area(pos, neg)
            for pos, neg in zip(state["positives"], state["negatives"], strict=True)
        ]
        return macro(np.array(areas, dtype=np.float64))

    def _column_area(self, pos: FloatArray, neg: FloatArray) -> float:
        if pos.sum() <= 0 or neg.sum() <= 0:
            return float("nan")
        occupied = (pos > 0) | (neg > 0)
        tp = np.cumsum(pos[occupied][::-1])  # at or above each distinct threshold
        fp = np.cumsum(neg[occupied][::-1])
        return self.area(tp, fp)

    @abstractmethod
    def area(self, tp: FloatArray, fp: FloatArray) -> float:
        """The area from the cumulative true and false positives at each distinct threshold,
        highest first (the last entries are all positives and all negatives)."""
