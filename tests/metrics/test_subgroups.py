"""Per-subgroup metrics merged over sites, and the largest gap."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medsilo.data.base import ArrayData
from medsilo.metrics.subgroups import (
    merge_subgroups,
    subgroup_column,
    subgroup_report,
    subgroup_states,
)
from medsilo.metrics.suite import MetricSuite
from tests.metrics.helpers import binary_predictions


def test_subgroups_merge_over_sites_and_report_the_largest_gap() -> None:
    suite = MetricSuite.build(["auroc", "brier"])
    p, y = binary_predictions(600, seed=21)
    rng = np.random.default_rng(0)
    groups = rng.choice(np.array(["female", "male", "other"]), size=len(y), p=[0.4, 0.5, 0.1])
    groups[:200][groups[:200] == "other"] = "male"  # the first site has no 'other' rows
    per_site = [
        subgroup_states(suite, p[s], y[s], groups[s]) for s in (slice(0, 200), slice(200, 600))
    ]
    assert sorted(per_site[0]) == ["female", "male"]
    report = subgroup_report(suite, merge_subgroups(suite, per_site))
    expected = {
        g: roc_auc_score(y[groups == g], p[groups == g]) for g in ("female", "male", "other")
    }
    for g, auc in expected.items():
        assert report.values[g]["auroc"] == pytest.approx(auc, abs=2e-3)
    gap = max(report.values[g]["auroc"] for g in expected) - min(
        report.values[g]["auroc"] for g in expected
    )
    assert report.largest_gap["auroc"] == pytest.approx(gap)
    assert set(report.as_dict()) == {"values", "largest_gap"}


def test_gap_needs_two_defined_subgroups() -> None:
    suite = MetricSuite.build(["auroc"])
    p, y = np.array([0.2, 0.8, 0.4]), np.array([0, 1, 1])
    groups = np.array(["a", "a", "b"])  # group b has positives only: AUROC undefined
    report = subgroup_report(suite, subgroup_states(suite, p, y, groups))
    assert np.isnan(report.values["b"]["auroc"])
    assert np.isnan(report.largest_gap["auroc"])


def test_subgroup_column_must_match_the_rows() -> None:
    suite = MetricSuite.build(["auroc"])
    with pytest.raises(ValueError, match="subgroup column has shape"):
        subgroup_states(suite, np.array([0.1, 0.2]), np.array([0, 1]), np.array(["a"]))


def test_subgroup_column_is_read_from_the_data_with_a_clear_error() -> None:
    data = ArrayData(
        np.zeros((2, 1), np.float32), np.zeros(2, np.int64), {"sex": np.array(["f", "m"])}
    )
    assert subgroup_column(data, "sex").tolist() == ["f", "m"]
    with pytest.raises(
        ValueError, match=r"no subgroup column 'age_band' in the data \(its columns: sex\)"
    ):
        subgroup_column(data, "age_band")
