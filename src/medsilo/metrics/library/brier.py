"""Brier score: the mean squared error of the predicted probabilities (lower is better).

Binary tasks use ``(p - y)^2`` (scikit-learn's ``brier_score_loss``); multiclass tasks the
original multi-category score ``sum_k (p_k - [y = k])^2`` (``brier_score_loss`` with
``scale_by_half=False``), which ranges over [0, 2]. The state is the weighted sum of squared
errors and the row count, so the pooled value is exact.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from medsilo.metrics.base import Metric, MetricState, OperatingPoint, Predictions


class Brier(Metric):
    name: ClassVar[str] = "brier"
    higher_is_better: ClassVar[bool] = False

    def state(self, predictions: Predictions) -> MetricState:
        p, y, w = predictions.probabilities, predictions.labels, predictions.weights
        if predictions.binary:
            errors = (p - y) ** 2
        else:
            onehot = np.eye(predictions.num_classes)[y]
            errors = ((p - onehot) ** 2).sum(axis=1)
        return {"squared_error": np.array(float(errors @ w)), "count": np.array(float(w.sum()))}

    def value(self, state: MetricState, operating_point: OperatingPoint | None = None) -> float:
        count = float(state["count"])
        return float(state["squared_error"]) / count if count > 0 else float("nan")
