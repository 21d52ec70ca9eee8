"""Area under the precision-recall curve as average precision (scikit-learn's step-wise
definition, no interpolation); more telling than AUROC when positives are rare."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from medsilo.metrics.base import FloatArray
from medsilo.metrics.ranking import RankingMetric


class AUPRC(RankingMetric):
    name: ClassVar[str] = "auprc"

    def area(self, tp: FloatArray, fp: FloatArray) -> float:
        """Sum over thresholds of (recall gained) x (precision there), as scikit-learn's
        ``average_precision_score``."""
        recall = np.concatenate([[0.0], tp / tp[-1]])
        predicted = tp + fp
        precision = np.divide(tp, predicted, out=np.ones_like(tp), where=predicted > 0)
        return float(np.sum(np.diff(recall) * precision))
