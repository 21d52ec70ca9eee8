"""Area under the ROC curve: the chance that a random positive scores above a random
negative (one-vs-rest macro average for multiclass tasks)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from medsilo.metrics.base import FloatArray
from medsilo.metrics.ranking import RankingMetric


class AUROC(RankingMetric):
    name: ClassVar[str] = "auroc"

    def area(self, tp: FloatArray, fp: FloatArray) -> float:
        """Trapezoids between the ROC points (ties in a bin are half-ordered), as
        scikit-learn's ``roc_auc_score``."""
        tpr = np.concatenate([[0.0], tp / tp[-1]])
        fpr = np.concatenate([[0.0], fp / fp[-1]])
        return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
