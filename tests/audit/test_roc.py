"""AUC and TPR at a low FPR, including the interpolation and the resolution flag."""

from __future__ import annotations

import numpy as np
import pytest

from medsilo.audit.roc import summarise_roc


def test_perfect_separation() -> None:
    s = summarise_roc(np.arange(10.0, 20.0), np.arange(0.0, 10.0))
    assert s.auc == 1.0 and s.tpr_at_low_fpr == 1.0
    assert s.resolution_limited  # 10 non-members cannot resolve an FPR of 0.1%


def test_same_distribution_is_chance() -> None:
    rng = np.random.default_rng(0)
    s = summarise_roc(rng.normal(size=3000), rng.normal(size=3000))
    assert abs(s.auc - 0.5) < 0.03
    assert s.tpr_at_low_fpr < 0.01 and not s.resolution_limited


def test_tpr_is_interpolated_between_roc_points() -> None:
    # 4 non-members: FPR steps of 0.25. Members: two above every non-member, two below all.
    members = np.array([10.0, 9.0, -10.0, -9.0])
    non_members = np.array([1.0, 2.0, 3.0, 4.0])
    s = summarise_roc(members, non_members, low_fpr=0.125)
    # ROC: (0, 0) -> (0, 0.5) -> (0.25, 0.5) ...: at FPR 0.125 the TPR is 0.5
    assert s.tpr_at_low_fpr == pytest.approx(0.5)
    assert s.auc == pytest.approx(0.5)


def test_rejects_empty_or_non_finite_scores() -> None:
    with pytest.raises(ValueError, match="at least one"):
        summarise_roc(np.array([]), np.array([1.0]))
    with pytest.raises(ValueError, match="finite"):
        summarise_roc(np.array([np.inf]), np.array([1.0]))
