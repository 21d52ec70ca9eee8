"""Scoring a membership-inference attack: ROC AUC and TPR at a low false-positive rate.

Scores are "higher = more likely a member". AUC and the ROC curve come from
:func:`sklearn.metrics.roc_curve` (all thresholds kept). The TPR at a target FPR (0.1% by
default, the operating point Carlini et al. 2022 argue matters: an attack is only a threat if
it is confident about *some* members) is read off the curve by linear interpolation between
the two ROC points that bracket the target FPR, which is what
``np.interp(target, fpr, tpr)`` does on the monotone curve.

With ``n`` non-members the smallest non-zero FPR the data can show is ``1/n``; when
``1/n > target`` the value is an interpolation between (0, TPR at FPR 0) and the first
measured point, so it is flagged ``resolution_limited``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score, roc_curve

LOW_FPR = 1e-3


@dataclass(frozen=True)
class RocSummary:
    auc: float
    tpr_at_low_fpr: float
    low_fpr: float
    members: int
    non_members: int
    resolution_limited: bool

    def as_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)


def roc_points(
    member_scores: NDArray[np.floating], non_member_scores: NDArray[np.floating]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(fpr, tpr)`` of the ROC curve."""
    labels, scores = _stack(member_scores, non_member_scores)
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return fpr.astype(np.float64), tpr.astype(np.float64)


def summarise_roc(
    member_scores: NDArray[np.floating],
    non_member_scores: NDArray[np.floating],
    low_fpr: float = LOW_FPR,
) -> RocSummary:
    if len(member_scores) == 0 or len(non_member_scores) == 0:
        raise ValueError("membership inference needs at least one member and one non-member")
    labels, scores = _stack(member_scores, non_member_scores)
    fpr, tpr = roc_points(member_scores, non_member_scores)
    return RocSummary(
        auc=float(roc_auc_score(labels, scores)),
        tpr_at_low_fpr=float(np.interp(low_fpr, fpr, tpr)),
        low_fpr=low_fpr,
        members=len(member_scores),
        non_members=len(non_member_scores),
        resolution_limited=1.0 / len(non_member_scores) > low_fpr,
    )


def _stack(
    member_scores: NDArray[np.floating], non_member_scores: NDArray[np.floating]
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    labels = np.concatenate(
        [np.ones(len(member_scores), np.int64), np.zeros(len(non_member_scores), np.int64)]
    )
    scores = np.concatenate([member_scores, non_member_scores]).astype(np.float64)
    if not np.all(np.isfinite(scores)):
        raise ValueError("membership scores must be finite")
    return labels, scores
