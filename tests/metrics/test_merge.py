"""States add up: the merged states of sites equal the states of their pooled predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medsilo.metrics.base import MetricInputError, merge_states
from medsilo.metrics.suite import MetricSuite, state_set_from_wire, state_set_to_wire
from tests.metrics.helpers import ALL, binary_predictions, multiclass_predictions


@pytest.mark.parametrize("multiclass", [False, True])
def test_merged_site_states_equal_pooled_states(multiclass: bool) -> None:
    p, y = multiclass_predictions(900, 3, seed=6) if multiclass else binary_predictions(900, 6)
    suite = MetricSuite.build(ALL)
    parts = np.split(np.arange(len(y)), [100, 450])
    merged = suite.merge(suite.states(p[i], y[i]) for i in parts)
    pooled = suite.states(p, y)
    assert merged.keys() == pooled.keys()
    for key in pooled:
        for name in pooled[key]:
            np.testing.assert_allclose(merged[key][name], pooled[key][name], rtol=1e-12)
    assert suite.values(merged) == pytest.approx(suite.values(pooled), rel=1e-12)


def test_metrics_reading_one_summary_share_one_state() -> None:
    suite = MetricSuite.build(["auroc", "auprc", "f1", "brier"])
    p, y = binary_predictions(50, seed=7)
    assert sorted(suite.states(p, y)) == ["brier", "score_histogram_1000"]


def test_states_round_trip_through_json_without_predictions() -> None:
    p, y = binary_predictions(200, seed=8)
    suite = MetricSuite.build(ALL)
    states = suite.states(p, y)
    wire = json.dumps(state_set_to_wire(states))
    back = state_set_from_wire(json.loads(wire))
    assert suite.values(back) == suite.values(states)
    sizes = {k: v.size for s in back.values() for k, v in s.items()}
    assert max(sizes.values()) == 1000  # fixed-size summaries, independent of the 200 rows


def test_weights_are_row_multiplicities() -> None:
    p, y = binary_predictions(60, seed=9)
    suite = MetricSuite.build(ALL)
    rows = np.array([0, 0, 3, 5, 5, 5, 59])
    counts = np.bincount(rows, minlength=len(y))
    weighted, repeated = suite.states(p, y, counts), suite.states(p[rows], y[rows])
    for key in repeated:
        for name in repeated[key]:
            np.testing.assert_allclose(weighted[key][name], repeated[key][name])


def test_merge_refuses_mismatched_states() -> None:
    two, three = multiclass_predictions(30, 3, seed=1), binary_predictions(30, seed=1)
    suite = MetricSuite.build(["auroc"])
    with pytest.raises(ValueError, match="different shapes"):
        suite.merge([suite.states(*two), suite.states(*three)])
    with pytest.raises(ValueError, match="keys"):
        merge_states([{"a": np.zeros(1)}, {"b": np.zeros(1)}])


@pytest.mark.parametrize(
    ("p", "y", "message"),
    [
        (np.array([0.2, 1.3]), np.array([0, 1]), "within"),
        (np.array([0.2, 0.3]), np.array([0, 2]), "labels must lie"),
        (np.array([0.2, 0.3]), np.array([0.0, 1.0]), "integers"),
        (np.array([[0.2], [0.3]]), np.array([0, 1]), "probabilities must be"),
        (np.array([0.2, 0.3, 0.4]), np.array([0, 1]), "labels must be"),
    ],
)
def test_bad_predictions_are_refused(p: np.ndarray, y: np.ndarray, message: str) -> None:
    with pytest.raises(MetricInputError, match=message):
        MetricSuite.build(["brier"]).states(p, y)
