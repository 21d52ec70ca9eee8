"""Synthetic predictions for metric tests: scores that separate the classes imperfectly."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

ALL = [
    "auroc",
    "auprc",
    "sensitivity",
    "specificity",
    "balanced_accuracy",
    "f1",
    "brier",
    "ece",
    "accuracy",
]


def binary_predictions(
    n: int, seed: int, spread: float = 1.5, scale: float = 1.0
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """P(class 1) from logits ``N(+-spread, scale)`` around the label (30% positives)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int64)
    z = rng.normal(loc=np.where(y == 1, spread, -spread), scale=scale)
    return 1.0 / (1.0 + np.exp(-z)), y


def multiclass_predictions(
    n: int, classes: int, seed: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Softmax probabilities whose true-class logit is raised by 1.5."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n)
    logits = rng.normal(size=(n, classes))
    logits[np.arange(n), y] += 1.5
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True), y.astype(np.int64)
