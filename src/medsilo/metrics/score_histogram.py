"""Binned score histograms: the one state behind AUROC, AUPRC and every threshold metric.

A site counts, per one-vs-rest column, how many positive and how many negative rows fall in
each score bin. From the merged counts the coordinator gets ROC and precision-recall curves
(the bins are the thresholds) and the confusion counts at any bin edge, so the operating
threshold can be chosen on validation counts and applied to test counts without a second
pass over any site's data.

Bins are uniform in the *logit* of the probability, over ``[-LOGIT_RANGE, LOGIT_RANGE]``
(the outer bins also take everything beyond). Uniform bins in probability lose the order of
confident predictions: a trained CNN on PneumoniaMNIST puts half of its test rows above
p = 0.999, all in one of 1,000 probability bins, and the binned AUROC then misses the exact
one by 0.027; on logit bins the same model is within 0.0005 (docs/metrics.md).
"""

from __future__ import annotations

import numpy as np

from medsilo.metrics.base import FloatArray, Metric, MetricState, OperatingPoint, Predictions

BINS = 1000
LOGIT_RANGE = 16.0  # p from 1.1e-7 to 1 - 1.1e-7 is resolved; beyond shares the end bins
STATE_KEY = f"score_histogram_{BINS}"


def logit(p: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore"):
        return np.asarray(np.log(p) - np.log1p(-p), dtype=np.float64)


def bin_index(p: FloatArray) -> FloatArray:
    """The score bin of each probability (as float, for use as a sort key)."""
    z = np.clip(logit(p), -LOGIT_RANGE, LOGIT_RANGE)
    scaled = np.floor((z + LOGIT_RANGE) / (2 * LOGIT_RANGE) * BINS)
    return np.minimum(scaled, BINS - 1)


def edge_probability(cut: int) -> float:
    """The probability at the lower edge of bin ``cut`` (0 for cut 0, 1 for cut BINS)."""
    if cut <= 0:
        return 0.0
    if cut >= BINS:
        return 1.0
    z = -LOGIT_RANGE + cut * 2 * LOGIT_RANGE / BINS
    return float(1.0 / (1.0 + np.exp(-z)))


def cut_of(threshold: float) -> int:
    """The bin edge nearest a probability threshold (inverse of :func:`edge_probability`)."""
    if threshold <= 0.0:
        return 0
    if threshold >= 1.0:
        return BINS
    z = float(logit(np.asarray(threshold)))
    return int(np.clip(np.rint((z + LOGIT_RANGE) / (2 * LOGIT_RANGE) * BINS), 0, BINS))


def histogram_state(predictions: Predictions) -> MetricState:
    """``positives`` and ``negatives``, shape ``(K, BINS)``: weighted row counts per bin."""
    scores, positive = predictions.one_vs_rest()
    pos = np.zeros((len(scores), BINS))
    neg = np.zeros((len(scores), BINS))
    for k, (column, is_pos) in enumerate(zip(scores, positive, strict=True)):
        bins = bin_index(column).astype(np.int64)
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
