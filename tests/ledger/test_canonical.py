"""Canonical payload bytes: deterministic, exact for floats, refusing what JSON cannot hold."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medsilo.ledger.canonical import canonical_json, parse_canonical


def test_key_order_and_spacing_do_not_matter() -> None:
    a = canonical_json({"b": [1, 2], "a": {"y": None, "x": True}})
    b = canonical_json({"a": {"x": True, "y": None}, "b": (1, 2)})
    assert a == b == b'{"a":{"x":true,"y":null},"b":[1,2]}'


def test_floats_round_trip_bit_for_bit() -> None:
    values = [0.1, 1 / 3, 1e-300, 2.0**-1074, 123456789.125, -0.0]
    data = canonical_json({"v": values, "n": np.float64(0.1), "i": np.int64(7)})
    back = parse_canonical(data)
    assert [math.copysign(1, x) for x in back["v"]] == [math.copysign(1, x) for x in values]
    assert back["v"] == values and back["n"] == 0.1 and back["i"] == 7
    assert canonical_json({"x": 1}) != canonical_json({"x": 1.0})


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="non-finite"):
        canonical_json({"epsilon": bad})


def test_non_json_values_are_refused() -> None:
    with pytest.raises(TypeError):
        canonical_json({"s": {1, 2}})
    with pytest.raises(TypeError, match="keys"):
        canonical_json({"d": {1: "x"}})


def test_non_ascii_is_escaped() -> None:
    assert canonical_json({"site": "Zürich"}) == b'{"site":"Z\\u00fcrich"}'


@pytest.mark.parametrize(
    "data", [b'{"a": 1}', b'{"b":1,"a":2}', b"[1]", b'{"a":1', '{"é":1}'.encode()]
)
def test_non_canonical_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_canonical(data)
