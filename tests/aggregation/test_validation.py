"""Update validation: every kind of malformed update is rejected with a named reason."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest

from medsilo.aggregation.validation import structural_problem, validate_updates
from medsilo.types import Update, Weights

NAMES = ("fc.weight", "fc.bias")


def reference() -> Weights:
    return [np.zeros((2, 3), np.float32), np.zeros(2, np.float32)]


def good(site: str = "a", scale: float = 1.0) -> Update:
    delta = [np.full((2, 3), 0.1 * scale, np.float32), np.full(2, 0.1 * scale, np.float32)]
    return Update(site, delta, num_examples=10, num_steps=5, metrics={"train_loss": 0.5})


def _nan(u: Update) -> None:
    u.delta[0][1, 2] = np.nan


def _inf(u: Update) -> None:
    u.delta[1][0] = -np.inf


def _shape(u: Update) -> None:
    u.delta[0] = u.delta[0].T.copy()


def _dtype(u: Update) -> None:
    u.delta[1] = u.delta[1].astype(np.float64)


def _int_dtype(u: Update) -> None:
    u.delta[1] = u.delta[1].astype(np.int32)


def _count(u: Update) -> None:
    u.delta.append(np.zeros(1, np.float32))


def _missing(u: Update) -> None:
    u.delta.pop()


def _not_array(u: Update) -> None:
    u.delta[0] = [[0.0] * 3] * 2  # type: ignore[call-overload]


def _extra_nan(u: Update) -> None:
    u.extras["delta_c"] = [np.full((2, 3), np.nan, np.float32), np.zeros(2, np.float32)]


def _examples(u: Update) -> None:
    u.num_examples = 0


def _metric(u: Update) -> None:
    u.metrics["train_loss"] = float("nan")


CASES: dict[str, tuple[Callable[[Update], None], str]] = {
    "nan": (_nan, r"delta tensor 0 \('fc.weight'\) contains NaN"),
    "inf": (_inf, r"delta tensor 1 \('fc.bias'\) contains Inf"),
    "shape": (_shape, r"has shape \(3, 2\), expected \(2, 3\)"),
    "dtype": (_dtype, r"has dtype float64, expected float32"),
    "int-dtype": (_int_dtype, r"has dtype int32, expected float32"),
    "too-many-tensors": (_count, r"delta has 3 tensors, expected 2"),
    "too-few-tensors": (_missing, r"delta has 1 tensors, expected 2"),
    "not-an-array": (_not_array, r"is a list, not an array"),
    "extra-nan": (_extra_nan, r"extra 'delta_c' tensor 0 \('fc.weight'\) contains NaN"),
    "num-examples": (_examples, r"num_examples must be positive, got 0"),
    "metric": (_metric, r"metric 'train_loss' is not finite"),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_each_malformed_update_is_rejected_with_its_reason(kind: str) -> None:
    corrupt, reason = CASES[kind]
    bad = good("bad")
    corrupt(bad)
    assert structural_problem(bad, reference(), NAMES) is not None
    accepted, rejected = validate_updates([good("a"), bad, good("b")], reference(), NAMES)
    assert [u.site for u in accepted] == ["a", "b"]
    assert len(rejected) == 1 and rejected[0].site == "bad"
    assert re.search(reason, rejected[0].reason), rejected[0].reason


def test_sound_updates_pass() -> None:
    ups = [good("a"), good("b", 2.0)]
    assert validate_updates(ups, reference(), NAMES, max_norm=10, max_norm_factor=10) == (ups, [])


def test_absurd_norm_relative_to_the_median_is_rejected() -> None:
    ups = [good("a"), good("b", 1.5), good("c", 0.8), good("huge", 1000.0)]
    accepted, rejected = validate_updates(ups, reference(), NAMES, max_norm_factor=100)
    assert [u.site for u in accepted] == ["a", "b", "c"]
    assert rejected[0].site == "huge" and "more than 100x the round's median" in rejected[0].reason
    # 10x the others passes a factor of 100 (sign-flip x10 attackers are the robust rules' job)
    ten = [good("a"), good("b"), good("c"), good("ten", 10.0)]
    assert len(validate_updates(ten, reference(), NAMES, max_norm_factor=100)[0]) == 4


def test_absolute_norm_cap() -> None:
    accepted, rejected = validate_updates(
        [good("a"), good("b", 50.0)], reference(), NAMES, max_norm=1.0
    )
    assert [u.site for u in accepted] == ["a"]
    assert rejected[0].reason.startswith("l2 norm") and "exceeds the cap 1" in rejected[0].reason


def test_rejections_follow_the_order_of_the_updates() -> None:
    a, b = good("a"), good("b", 1000.0)
    c = good("c")
    _nan(c)
    _, rejected = validate_updates([a, b, c, good("d")], reference(), NAMES, max_norm_factor=10)
    assert [r.site for r in rejected] == ["b", "c"]
