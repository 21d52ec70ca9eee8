"""Reward shares: the documented properties (docs/contribution.md)."""

from __future__ import annotations

import numpy as np
import pytest

from medsilo.contribution.shapley import exact_shapley
from medsilo.contribution.shares import reward_shares, shares_entry


def test_shares_sum_to_one_and_are_proportional_to_the_positive_part() -> None:
    shares = reward_shares({"a": 0.3, "b": 0.1, "c": -0.2, "d": 0.0})
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares == pytest.approx({"a": 0.75, "b": 0.25, "c": 0.0, "d": 0.0})


def test_equal_scores_get_equal_shares_and_null_players_get_nothing() -> None:
    shares = reward_shares({"a": 0.2, "b": 0.2, "null": 0.0})
    assert shares["a"] == shares["b"] == pytest.approx(0.5)
    assert shares["null"] == 0.0


def test_a_flagged_free_rider_gets_zero_and_the_rest_is_renormalised() -> None:
    shares = reward_shares({"a": 0.2, "copy": 0.2, "b": 0.1}, flagged={"copy"})
    assert shares == pytest.approx({"a": 2 / 3, "copy": 0.0, "b": 1 / 3})


def test_nothing_is_paid_when_no_site_helped() -> None:
    assert reward_shares({"a": -0.1, "b": 0.0}) == {"a": 0.0, "b": 0.0}
    assert reward_shares({"a": 0.4}, flagged={"a"}) == {"a": 0.0}


def _value(datasets: frozenset[str]) -> float:
    """A model's quality grows with the distinct datasets behind it, with diminishing returns."""
    worth = {"A": 3.0, "B": 2.0, "C": 1.0}
    return float(np.sqrt(sum(worth[d] for d in datasets)))


def _shares(holdings: list[str]) -> dict[str, float]:
    def utility(coalition: frozenset[int]) -> float:
        return _value(frozenset(holdings[i] for i in coalition))

    values = exact_shapley(len(holdings), utility).values
    names = [f"{d}{k}" for k, d in enumerate(holdings)]
    return reward_shares(dict(zip(names, values, strict=True)))


def test_a_site_whose_data_is_duplicated_does_not_double_its_share() -> None:
    alone = _shares(["A", "B", "C"])
    twice = _shares(["A", "A", "B", "C"])  # the same data under a second identity
    assert twice["A0"] == pytest.approx(twice["A1"])
    assert twice["A0"] < alone["A0"]  # each identity earns less than the original did
    pair = twice["A0"] + twice["A1"]
    assert pair < 1.2 * alone["A0"]  # the two together: far from double
    assert (round(alone["A0"], 3), round(pair, 3)) == (0.457, 0.526)
    thrice = _shares(["A", "A", "A", "B", "C"])
    assert 3 * thrice["A0"] < 1.25 * alone["A0"]


def test_shares_come_from_shapley_when_present_else_from_leave_one_out() -> None:
    scores = {
        "shapley": {"values": {"a": 0.3, "b": 0.1}},
        "loo": {"a": {"score": -0.1}, "b": {"score": 0.2}},
    }
    entry = shares_entry(scores, {"b"})
    assert entry == {"from": "shapley", "zeroed_free_riders": ["b"], "values": {"a": 1.0, "b": 0.0}}
    loo = shares_entry({"loo": scores["loo"]}, set())
    assert loo["from"] == "loo" and loo["values"] == {"a": 0.0, "b": 1.0}
