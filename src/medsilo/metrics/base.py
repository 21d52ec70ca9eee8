"""What a pluggable metric is: a site-side summary that adds up, and a value read from it.

A federated coordinator never sees per-patient predictions. So every metric here splits into
two halves: :meth:`Metric.state` runs at a site and reduces that site's predicted
probabilities and labels to a small mergeable *state* (counts and sums in numpy arrays: a
binned score histogram, confusion counts, calibration bins, a sum of squared errors), and
:meth:`Metric.value` runs at the coordinator on the element-wise sum of the sites' states.
Because every state is a sum over patients, merging is addition and the pooled value equals
the value on the pooled predictions (exactly, or up to the binning of the histogram).

Predictions are probabilities: a vector ``(N,)`` of P(class 1) for a binary task (the
one-logit models of :mod:`medsilo.models.zoo`), or a matrix ``(N, C)`` of class
probabilities for a multiclass task, scored one-vs-rest per class and macro-averaged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
#: One metric's state at one site: named arrays of counts or sums, nothing per patient.
MetricState = dict[str, FloatArray]


class MetricInputError(ValueError):
    """Predictions and labels that a metric cannot score (shapes, ranges, label values)."""


@dataclass(frozen=True)
class Predictions:
    """Checked inputs of a metric: probabilities, integer labels, optional per-row weights.

    ``weights`` are non-negative row multiplicities (a bootstrap resample is the original rows
    with integer weights); ``None`` means each row once.
    """

    probabilities: FloatArray
    labels: NDArray[np.int64]
    weights: FloatArray

    @property
    def binary(self) -> bool:
        return self.probabilities.ndim == 1

    @property
    def num_classes(self) -> int:
        return 2 if self.binary else int(self.probabilities.shape[1])

    def one_vs_rest(self) -> tuple[FloatArray, NDArray[np.bool_]]:
        """Scores and positive flags per column, shape ``(K, N)``: K = 1 (class 1) for a
        binary task, K = C (class k against the rest) for a multiclass task."""
        if self.binary:
            return self.probabilities[None, :], (self.labels == 1)[None, :]
        classes = np.arange(self.num_classes)[:, None]
        return self.probabilities.T, self.labels[None, :] == classes

    def predicted_class(self) -> NDArray[np.int64]:
        """The model's decision: P(class 1) > 0.5 (logit > 0), or the most probable class."""
        if self.binary:
            return (self.probabilities > 0.5).astype(np.int64)
        return np.asarray(self.probabilities.argmax(axis=1), dtype=np.int64)

    @staticmethod
    def of(
        probabilities: NDArray[np.floating],
        labels: NDArray[np.integer],
        weights: NDArray[np.floating] | NDArray[np.integer] | None = None,
    ) -> Predictions:
        p = np.asarray(probabilities, dtype=np.float64)
        y = np.asarray(labels)
        if p.ndim not in (1, 2) or (p.ndim == 2 and p.shape[1] < 2):
            raise MetricInputError(
                f"probabilities must be (N,) for a binary task or (N, C>=2), got {p.shape}"
            )
        if y.ndim != 1 or len(y) != len(p):
            raise MetricInputError(f"labels must be (N,) with N={len(p)}, got {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise MetricInputError(f"labels must be integers, got dtype {y.dtype}")
        if not np.all(np.isfinite(p)) or p.min(initial=0.0) < 0 or p.max(initial=0.0) > 1:
            raise MetricInputError("probabilities must be finite and within [0, 1]")
        classes = 2 if p.ndim == 1 else p.shape[1]
        if len(y) and (y.min() < 0 or y.max() >= classes):
            raise MetricInputError(f"labels must lie in 0..{classes - 1}")
        w = np.ones(len(p)) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (len(p),) or (len(w) and w.min() < 0):
            raise MetricInputError(f"weights must be (N,) non-negative, got shape {w.shape}")
        return Predictions(p, y.astype(np.int64), w)


@dataclass(frozen=True)
class OperatingPoint:
    """Per one-vs-rest column, the probability at or above which a row counts as positive.

    Chosen on validation states (:mod:`medsilo.metrics.operating_point`) and then applied
    unchanged to test states, so sensitivity and specificity are not tuned on the test set.
    """

    thresholds: tuple[float, ...]


class Metric(ABC):
    """One clinical metric: a site-side mergeable state and a coordinator-side value.

    Subclasses set ``name`` and, when several metrics read the same summary (AUROC, AUPRC and
    the threshold metrics all read one score histogram), the same ``state_key``, so a site
    computes and sends that summary once.
    """

    name: ClassVar[str]
    #: Higher is better (AUROC) or lower is better (Brier); reports use it to rank.
    higher_is_better: ClassVar[bool] = True

    @property
    def state_key(self) -> str:
        return self.name

    @abstractmethod
    def state(self, predictions: Predictions) -> MetricState:
        """The site's summary of its predictions (no per-patient values)."""

    def merge(self, states: Iterable[MetricState]) -> MetricState:
        return merge_states(states)

    @abstractmethod
    def value(self, state: MetricState, operating_point: OperatingPoint | None = None) -> float:
        """The metric on a (merged) state; NaN when the state cannot define it (e.g. AUROC
        without both classes). Threshold metrics read ``operating_point`` (default 0.5)."""


def merge_states(states: Iterable[MetricState]) -> MetricState:
    """Element-wise sum of states with the same keys and shapes (every state is additive)."""
    items = list(states)
    if not items:
        raise ValueError("no states to merge")
    keys = set(items[0])
    for s in items[1:]:
        if set(s) != keys:
            raise ValueError(f"cannot merge states with keys {sorted(s)} and {sorted(keys)}")
    merged: MetricState = {}
    for k in sorted(keys):
        shapes = {np.shape(s[k]) for s in items}
        if len(shapes) != 1:
            raise ValueError(f"cannot merge state {k!r} of different shapes {sorted(shapes)}")
        merged[k] = np.sum([np.asarray(s[k], dtype=np.float64) for s in items], axis=0)
    return merged


def state_to_wire(state: Mapping[str, FloatArray]) -> dict[str, list[float] | float]:
    """JSON-ready copy of a state (nested lists of counts and sums)."""
    return {k: np.asarray(v, dtype=np.float64).tolist() for k, v in state.items()}


def state_from_wire(raw: Mapping[str, object]) -> MetricState:
    return {str(k): np.asarray(v, dtype=np.float64) for k, v in raw.items()}
