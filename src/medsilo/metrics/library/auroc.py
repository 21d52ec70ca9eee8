"""Area under the ROC curve: the chance that a random positive scores above a random
negative (one-vs-rest macro average for multiclass tasks)."""

from __future__ import annotations

from typing import ClassVar

from medsilo.metrics.ranking import RankingMetric, WeightedScore


class AUROC(RankingMetric):
    name: ClassVar[str] = "auroc"

    def score_function(self) -> WeightedScore:
        from sklearn.metrics import roc_auc_score  # lazy: sklearn costs ~0.5 s to import

        return roc_auc_score  # type: ignore[no-any-return]
