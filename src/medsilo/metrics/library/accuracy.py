"""Accuracy of the model's own decision (P(class 1) > 0.5, or the most probable class): the
lead metric of multiclass tasks by default, and the number the round records already show."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from medsilo.metrics.base import Metric, MetricState, OperatingPoint, Predictions


class Accuracy(Metric):
    name: ClassVar[str] = "accuracy"

    def state(self, predictions: Predictions) -> MetricState:
        right = predictions.predicted_class() == predictions.labels
        w = predictions.weights
        return {"correct": np.array(float(w[right].sum())), "count": np.array(float(w.sum()))}

    def value(self, state: MetricState, operating_point: OperatingPoint | None = None) -> float:
        count = float(state["count"])
        return float(state["correct"]) / count if count > 0 else float("nan")
