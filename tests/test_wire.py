"""The canonical wire encoding: exact round trip and the dense/sparse choice."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medsilo.ledger.digest import weights_sha256
from medsilo.wire import BITMAP, DENSE, HEADER, SPARSE, decode, encode, encoded_size


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
    for bitmap in (True, False):
        blob = encode(w, bitmap=bitmap)
        assert len(blob) == encoded_size(w, bitmap=bitmap)
        back = decode(blob, [x.shape for x in w])
        for a, b in zip(w, back, strict=True):
            assert a.shape == b.shape and b.dtype == np.float32
            np.testing.assert_array_equal(a, b)


def _kinds(blob: bytes, sizes: list[int]) -> list[int]:
    kinds, pos = [], 0
    for n in sizes:
        kind, count = HEADER.unpack_from(blob, pos)
        kinds.append(kind)
        body = {DENSE: 4 * n, SPARSE: 8 * count, BITMAP: (n + 7) // 8 + 4 * count}[kind]
        pos += HEADER.size + body
    return kinds


def test_each_tensor_takes_the_smallest_of_dense_index_and_bitmap() -> None:
    dense = [np.ones((10, 10), np.float32)]
    assert len(encode(dense)) == HEADER.size + 400
    one = np.zeros(100, np.float32)
    one[34] = 2.5  # 1 of 100 below n / 32: index pairs
    assert len(encode([one])) == HEADER.size + 8
    half = np.zeros(100, np.float32)
    half[:50] = 1.0  # bitmap 13 + 200 bytes beats dense 400 and index 400
    assert len(encode([half])) == HEADER.size + 13 + 200
    assert len(encode([half], bitmap=False)) == HEADER.size + 400  # first version: dense
    tenth_zero = np.ones(1000, np.float32)
    tenth_zero[::10] = 0.0  # 10 % zeros already pay with the bitmap: 125 + 3600 < 4000
    assert encoded_size([tenth_zero]) == HEADER.size + 125 + 3600
    blob = encode([dense[0], one, half, tenth_zero])
    assert _kinds(blob, [100, 100, 100, 1000]) == [DENSE, SPARSE, BITMAP, BITMAP]
    assert len(encode([])) == 0


def test_ties_go_to_the_simpler_kind() -> None:
    n = 64  # k = 2: index 16 bytes == bitmap 8 + 8 bytes: index is sent
    w = np.zeros(n, np.float32)
    w[[3, 40]] = 1.0
    assert _kinds(encode([w]), [n]) == [SPARSE]


def test_the_ledger_hash_keeps_the_first_format() -> None:
    w = [np.ones(1000, np.float32)]
    w[0][::10] = 0.0  # bitmap on the wire, dense in the ledger's hash
    first = HEADER.pack(DENSE, 1000) + w[0].astype("<f4").tobytes()
    assert weights_sha256(w) == hashlib.sha256(first).hexdigest()


def test_decode_rejects_an_inconsistent_bitmap() -> None:
    half = np.zeros(12, np.float32)
    half[:6] = 1.0
    blob = bytearray(encode([half]))
    assert blob[0] == BITMAP
    blob[HEADER.size + 1] |= 0x80  # a padding bit (entry 15 of 12)
    with pytest.raises(ValueError, match="padding bits"):
        decode(bytes(blob), [(12,)])
    blob = bytearray(encode([half]))
    blob[HEADER.size] ^= 0x01  # one nonzero fewer than the header's count
    with pytest.raises(ValueError, match="header says 6"):
        decode(bytes(blob), [(12,)])


def test_negative_zero_and_extreme_values_round_trip() -> None:
    w = [np.array([0.0, -0.0, np.float32(1e-45), np.float32(3e38), -7.0], np.float32)]
    back = decode(encode(w), [(5,)])[0]
    np.testing.assert_array_equal(back, w[0])


def test_float64_is_sent_as_float32() -> None:
    w = [np.arange(6, dtype=np.float64).reshape(2, 3)]
    assert encoded_size(w) == HEADER.size + 1 + 20  # one zero of six: bitmap + 5 values
    np.testing.assert_array_equal(decode(encode(w), [(2, 3)])[0], w[0].astype(np.float32))


def test_decode_rejects_wrong_shapes_and_trailing_bytes() -> None:
    w = [np.ones(4, np.float32)]
    with pytest.raises(ValueError, match="expected shape"):
        decode(encode(w), [(5,)])
    with pytest.raises(ValueError, match="trailing"):
        decode(encode(w) + b"\0", [(4,)])
