"""Area under the precision-recall curve as average precision (scikit-learn's step-wise
definition, no interpolation); more telling than AUROC when positives are rare."""

from __future__ import annotations

from typing import ClassVar

from medsilo.metrics.ranking import RankingMetric, WeightedScore


class AUPRC(RankingMetric):
    name: ClassVar[str] = "auprc"

    def score_function(self) -> WeightedScore:
        from sklearn.metrics import average_precision_score  # lazy, as in auroc

        return average_precision_score  # type: ignore[no-any-return]
