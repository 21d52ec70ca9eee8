"""The canonical wire encoding: exact round trip and the dense/sparse choice."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medsilo.wire import HEADER, decode, encode, encoded_size


def _weights(seed: int, shapes: list[tuple[int, ...]], zero_share: float) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for shape in shapes:
        w = rng.normal(size=shape).astype(np.float32)
        w[rng.random(size=shape) < zero_share] = 0.0
        out.append(w)
    return out


shapes_st = st.lists(
    st.lists(st.integers(0, 6), min_size=0, max_size=3).map(tuple), min_size=0, max_size=4
)


@settings(max_examples=60, deadline=None)
@given(shapes=shapes_st, seed=st.integers(0, 10_000), zero_share=st.floats(0, 1))
def test_round_trip_is_exact(shapes: list[tuple[int, ...]], seed: int, zero_share: float) -> None:
    w = _weights(seed, shapes, zero_share)
    blob = encode(w)
    assert len(blob) == encoded_size(w)
    back = decode(blob, [x.shape for x in w])
    for a, b in zip(w, back, strict=True):
        assert a.shape == b.shape and b.dtype == np.float32
        np.testing.assert_array_equal(a, b)


def test_dense_vs_sparse_size() -> None:
    dense = [np.ones((10, 10), np.float32)]
    assert len(encode(dense)) == HEADER.size + 400
    sparse = [np.zeros((10, 10), np.float32)]
    sparse[0][3, 4] = 2.5
    assert len(encode(sparse)) == HEADER.size + 8
    half = np.zeros(100, np.float32)
    half[:50] = 1.0  # 8 * 50 == 4 * 100: sparse is not smaller, stay dense
    assert len(encode([half])) == HEADER.size + 400
    assert len(encode([])) == 0


def test_negative_zero_and_extreme_values_round_trip() -> None:
    w = [np.array([0.0, -0.0, np.float32(1e-45), np.float32(3e38), -7.0], np.float32)]
    back = decode(encode(w), [(5,)])[0]
    np.testing.assert_array_equal(back, w[0])


def test_float64_is_sent_as_float32() -> None:
    w = [np.arange(6, dtype=np.float64).reshape(2, 3)]
    assert encoded_size(w) == HEADER.size + 24  # one zero of six: dense wins
    np.testing.assert_array_equal(decode(encode(w), [(2, 3)])[0], w[0].astype(np.float32))


def test_decode_rejects_wrong_shapes_and_trailing_bytes() -> None:
    w = [np.ones(4, np.float32)]
    with pytest.raises(ValueError, match="expected shape"):
        decode(encode(w), [(5,)])
    with pytest.raises(ValueError, match="trailing"):
        decode(encode(w) + b"\0", [(4,)])
