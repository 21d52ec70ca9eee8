"""Binned score histograms: the one state behind AUROC, AUPRC and every threshold metric.

A site counts, per one-vs-rest column, how many positive and how many negative rows fall in
each score bin. From the merged counts the coordinator gets ROC and precision-recall curves
(the bins are the thresholds) and the confusion counts at any bin edge, so the operating
threshold can be chosen on validation counts and applied to test counts without a second
pass over any site's data.

Bins are uniform in ``asinh(logit(p) / 3)`` over logits in [-40, 40] (the end bins also take
everything beyond): fine near p = 0.5 (0.02 in logit units) and still resolving the confident
scores of trained image models, whose order uniform probability bins lose. A long-trained CNN
on PneumoniaMNIST puts 69% of its test rows above p = 0.999: 1,000 probability bins miss its
exact AUROC by 0.053 and 1,000 logit bins over [-16, 16] by 0.020, while these bins miss by
3e-5 (docs/metrics.md has the measurements). Float64 probabilities saturate at 1 near logit
37, so [-40, 40] covers every probability above 1/2 that can be told apart.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from medsilo.metrics.base import FloatArray, Metric, MetricState, OperatingPoint, Predictions

BINS = 1000
LOGIT_LIMIT = 40.0
LOGIT_SCALE = 3.0  # logits within a few units of 0 get near-uniform bins, the tails log-spaced
STATE_KEY = f"score_histogram_{BINS}"
_HALF_WIDTH = float(np.arcsinh(LOGIT_LIMIT / LOGIT_SCALE))


def logit(p: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore"):
        return np.asarray(np.log(p) - np.log1p(-p), dtype=np.float64)


def bin_index(p: FloatArray) -> NDArray[np.int64]:
    """The score bin of each probability."""
    u = np.arcsinh(np.clip(logit(p), -LOGIT_LIMIT, LOGIT_LIMIT) / LOGIT_SCALE)
    scaled = np.floor((u + _HALF_WIDTH) / (2 * _HALF_WIDTH) * BINS)
    return np.clip(scaled, 0, BINS - 1).astype(np.int64)


def _edges() -> FloatArray:
    u = -_HALF_WIDTH + np.arange(BINS + 1) * (2 * _HALF_WIDTH / BINS)
    edges = np.asarray(1.0 / (1.0 + np.exp(-LOGIT_SCALE * np.sinh(u))), dtype=np.float64)
    edges[0], edges[-1] = 0.0, 1.0
    return edges


#: The probability at the lower edge of each bin (0 for the first), and 1 past the last.
EDGES = _edges()


def edge_probability(cut: int) -> float:
    """The probability threshold of cut ``cut`` (0 flags every row, ``BINS`` none)."""
    return float(EDGES[int(np.clip(cut, 0, BINS))])


def cut_of(threshold: float) -> int:
    """The first cut whose edge is at or above ``threshold``: rows at or above the threshold
    are exactly the rows in bins from this cut on (inverse of :func:`edge_probability`)."""
    return min(int(np.searchsorted(EDGES, threshold, side="left")), BINS)


def histogram_state(predictions: Predictions) -> MetricState:
    """``positives`` and ``negatives``, shape ``(K, BINS)``: weighted row counts per bin."""
    scores, positive = predictions.one_vs_rest()
    pos = np.zeros((len(scores), BINS))
    neg = np.zeros((len(scores), BINS))
    for k, (column, is_pos) in enumerate(zip(scores, positive, strict=True)):
        bins = bin_index(column)
        pos[k] = np.bincount(bins[is_pos], predictions.weights[is_pos], minlength=BINS)
        neg[k] = np.bincount(bins[~is_pos], predictions.weights[~is_pos], minlength=BINS)
    return {"positives": pos, "negatives": neg}


def positives_at_or_above(counts: FloatArray) -> FloatArray:
    """Per column, the rows at or above each cut 0..BINS (shape ``(K, BINS + 1)``)."""
    tail = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]
    return np.concatenate([tail, np.zeros((len(counts), 1))], axis=1)


def confusion_at(
    state: MetricState, operating_point: OperatingPoint | None
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """True/false positives and false/true negatives per column at the operating point
    (default: probability 0.5 in every column)."""
    pos, neg = state["positives"], state["negatives"]
    k = len(pos)
    thresholds = (0.5,) * k if operating_point is None else operating_point.thresholds
    if len(thresholds) != k:
        raise ValueError(f"operating point has {len(thresholds)} thresholds for {k} column(s)")
    cuts = np.array([cut_of(t) for t in thresholds])
    rows = np.arange(k)
    tp = positives_at_or_above(pos)[rows, cuts]
    fp = positives_at_or_above(neg)[rows, cuts]
    return tp, fp, pos.sum(axis=1) - tp, neg.sum(axis=1) - fp


def macro(values: FloatArray) -> float:
    """Mean over the one-vs-rest columns that define a value (NaN when none does)."""
    defined = values[np.isfinite(values)]
    return float(defined.mean()) if len(defined) else float("nan")


def ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    """``num / den`` with NaN where ``den`` is 0 (a rate with no rows is undefined)."""
    out = np.full(np.shape(num), np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


class HistogramMetric(Metric):
    """A metric read from the score histogram; all of them share the one state a site sends."""

    @property
    def state_key(self) -> str:
        return STATE_KEY

    def state(self, predictions: Predictions) -> MetricState:
        return histogram_state(predictions)
