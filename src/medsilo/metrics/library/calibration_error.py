"""Expected calibration error (ECE, lower is better) over 15 equal-width confidence bins.

Confidence and correctness follow torchmetrics' definitions: for a binary task the
confidence is P(class 1) and the outcome is the label (so a bin compares the mean predicted
risk with the observed rate, as a reliability diagram does); for a multiclass task the
confidence is the top probability and the outcome whether that class is right. ECE is
``sum_b (n_b / N) |mean outcome_b - mean confidence_b|``. The state keeps per bin the row
count, the summed confidence and the summed outcome, so the pooled ECE is exact.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from medsilo.metrics.base import FloatArray, Metric, MetricState, OperatingPoint, Predictions

CALIBRATION_BINS = 15


class CalibrationError(Metric):
    name: ClassVar[str] = "ece"
    higher_is_better: ClassVar[bool] = False

    def state(self, predictions: Predictions) -> MetricState:
        p, y, w = predictions.probabilities, predictions.labels, predictions.weights
        if predictions.binary:
            confidence, outcome = p, y.astype(np.float64)
        else:
            confidence = p.max(axis=1)
            outcome = (predictions.predicted_class() == y).astype(np.float64)
        bins = np.minimum((confidence * CALIBRATION_BINS).astype(np.int64), CALIBRATION_BINS - 1)
        return {
            "count": _per_bin(bins, w),
            "confidence": _per_bin(bins, w * confidence),
            "outcome": _per_bin(bins, w * outcome),
        }

    def value(self, state: MetricState, operating_point: OperatingPoint | None = None) -> float:
        total = float(state["count"].sum())
        if total <= 0:
            return float("nan")
        return float(np.abs(state["outcome"] - state["confidence"]).sum() / total)


def _per_bin(bins: NDArray[np.int64], amounts: FloatArray) -> FloatArray:
    return np.bincount(bins, amounts, minlength=CALIBRATION_BINS).astype(np.float64)
