"""Area metrics (AUROC, AUPRC) from the merged score histogram, through scikit-learn.

Each non-empty bin becomes one pseudo-row per class whose score is the bin number and whose
sample weight is its count; scikit-learn's weighted ``roc_auc_score`` or
``average_precision_score`` on these rows is the exact area of the binned curve (rows that
share a bin are ties, scored as half-ordered). Multiclass tasks average the one-vs-rest
areas over the classes that have both positives and negatives (macro average).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable

import numpy as np

from medsilo.metrics.base import FloatArray, MetricState, OperatingPoint
from medsilo.metrics.score_histogram import HistogramMetric, macro

WeightedScore = Callable[..., float]


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
        bins = np.arange(len(pos), dtype=np.float64)
        keep_pos, keep_neg = pos > 0, neg > 0
        scores = np.concatenate([bins[keep_neg], bins[keep_pos]])
        truth = np.concatenate([np.zeros(int(keep_neg.sum())), np.ones(int(keep_pos.sum()))])
        weight = np.concatenate([neg[keep_neg], pos[keep_pos]])
        return float(self.score_function()(truth, scores, sample_weight=weight))

    @abstractmethod
    def score_function(self) -> WeightedScore:
        """The scikit-learn function ``f(y_true, y_score, sample_weight=...)`` of the area."""
