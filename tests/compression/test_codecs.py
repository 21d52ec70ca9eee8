"""Codecs: round trips, error bounds, exact byte counts, malformed payloads, error feedback."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medsilo import wire
from medsilo.compression.codecs import (
    QSGD,
    Codec,
    DecodeError,
    Fp16,
    Int8,
    NoCompression,
    PowerSGD,
    TopK,
    topk_count,
    varint_decode,
    varint_encode,
)
from medsilo.compression.feedback import compress
from medsilo.types import Weights, flatten

SHAPES = [(16, 5), (16,), (3, 4, 2, 2), (1,)]


def delta(seed: int = 0, scale: float = 0.01) -> Weights:
    rng = np.random.default_rng(seed)
    return [(scale * rng.normal(size=s)).astype(np.float32) for s in SHAPES]


def sizes() -> list[int]:
    return [math.prod(s) for s in SHAPES]


ALL: list[Codec] = [NoCompression(), Fp16(), Int8(), TopK(0.1), QSGD(4), PowerSGD(2)]


@pytest.mark.parametrize("codec", ALL, ids=lambda c: c.name)
def test_decode_gives_float32_arrays_of_the_layout(codec: Codec) -> None:
    rng = np.random.default_rng(0)
    out = codec.decode(codec.encode(delta(), rng), SHAPES)
    assert [w.shape for w in out] == SHAPES
    assert all(w.dtype == np.float32 for w in out)


def test_none_is_the_wire_encoding_and_exact() -> None:
    d = delta()
    data = NoCompression().encode(d)
    assert data == wire.encode(d) and len(data) == wire.encoded_size(d)
    for a, b in zip(NoCompression().decode(data, SHAPES), d, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fp16_is_half_of_fp32_plus_headers_and_close() -> None:
    d = delta()
    data = Fp16().encode(d)
    assert len(data) == sum(4 + 2 * n for n in sizes())
    dense_fp32 = sum(5 + 4 * n for n in sizes())  # medsilo.wire, all tensors dense here
    assert len(data) == (dense_fp32 - 5 * len(SHAPES)) // 2 + 4 * len(SHAPES)
    for a, b in zip(Fp16().decode(data, SHAPES), d, strict=True):
        np.testing.assert_allclose(a, b, rtol=2**-11, atol=2**-24)


def test_fp16_overflow_becomes_inf() -> None:
    out = Fp16().decode(Fp16().encode([np.array([1e6], np.float32)]), [(1,)])
    assert np.isinf(out[0]).all()


def test_int8_size_and_error_bound() -> None:
    d = delta(scale=3.0)
    data = Int8().encode(d)
    assert len(data) == sum(8 + n for n in sizes())
    for a, b in zip(Int8().decode(data, SHAPES), d, strict=True):
        step = np.abs(b).max() / 127
        assert np.abs(a - b).max() <= step / 2 * (1 + 1e-5)


def test_int8_of_zeros_and_of_nan() -> None:
    zeros = [np.zeros(s, np.float32) for s in SHAPES]
    assert all((w == 0).all() for w in Int8().decode(Int8().encode(zeros), SHAPES))
    bad = delta()
    bad[1][3] = np.nan
    out = Int8().decode(Int8().encode(bad), SHAPES)
    assert np.isnan(out[1]).all() and np.isfinite(out[0]).all()


def test_topk_keeps_exactly_the_k_largest() -> None:
    d = delta()
    flat = flatten(d)
    codec = TopK(0.1)
    k = topk_count(0.1, flat.size)
    assert k == round(0.1 * flat.size)
    out = flatten(codec.decode(codec.encode(d), SHAPES))
    kept = np.flatnonzero(out)
    assert kept.size == k
    np.testing.assert_array_equal(out[kept], flat[kept])
    assert np.abs(flat[kept]).min() >= np.sort(np.abs(flat))[-k]


def test_topk_byte_count_is_exact() -> None:
    d = [np.zeros(1000, np.float32)]
    d[0][[3, 130, 999]] = [5.0, -6.0, 7.0]
    codec = TopK(0.003)  # k = 3
    data = codec.encode(d)
    # uint32 k; gaps 3, 127, 869 as varints (1 + 1 + 2 bytes); 3 float32 values
    assert len(data) == 4 + (1 + 1 + 2) + 3 * 4
    np.testing.assert_array_equal(codec.decode(data, [(1000,)])[0], d[0])


def test_topk_one_percent_is_over_50x_smaller_than_fp32() -> None:
    d = [np.random.default_rng(0).normal(size=(128, 1568)).astype(np.float32)]
    assert wire.encoded_size(d) / len(TopK(0.01).encode(d)) > 50


def test_topk_ties_and_all_entries() -> None:
    d = [np.ones(10, np.float32)]
    out = TopK(0.3).decode(TopK(0.3).encode(d), [(10,)])[0]
    assert np.count_nonzero(out) == 3
    np.testing.assert_array_equal(TopK(1.0).decode(TopK(1.0).encode(d), [(10,)])[0], d[0])


@pytest.mark.parametrize("values", [[0, 1, 127, 128, 16383, 16384, 2**31 - 1], []])
def test_varint_round_trip(values: list[int]) -> None:
    raw = varint_encode(np.array(values, dtype=np.int64))
    assert len(raw) == sum(max(1, math.ceil(v.bit_length() / 7)) for v in values)
    back, used = varint_decode(np.frombuffer(raw + b"\x05", np.uint8), len(values))
    assert back.tolist() == values and used == len(raw)


def test_qsgd_is_unbiased_and_sized_exactly() -> None:
    d = delta(scale=1.0)
    codec = QSGD(levels=4, bucket=16)  # 9 levels -> 4 bits an entry
    data = codec.encode(d, np.random.default_rng(0))
    assert len(data) == sum(4 + 4 * math.ceil(n / 16) + math.ceil(n * 4 / 8) for n in sizes())
    rng = np.random.default_rng(1)
    mean = np.mean([flatten(codec.decode(codec.encode(d, rng), SHAPES)) for _ in range(2000)], 0)
    np.testing.assert_allclose(mean, flatten(d), atol=0.08)
    one = codec.decode(data, SHAPES)
    for a, b in zip(one, d, strict=True):  # within one level (of its bucket's norm) of the truth
        flat_b, err = b.ravel(), np.abs(a - b).ravel()
        for start in range(0, flat_b.size, 16):
            chunk = slice(start, start + 16)
            assert err[chunk].max() <= np.linalg.norm(flat_b[chunk]) / 4 + 1e-6


def test_qsgd_buckets_bound_the_variance() -> None:
    """One norm per 512 entries keeps the error far below one norm per tensor."""
    x = [np.random.default_rng(3).normal(size=(200, 500)).astype(np.float32)]
    shapes = [x[0].shape]

    def relative_error(codec: QSGD) -> float:
        got = codec.decode(codec.encode(x, np.random.default_rng(4)), shapes)[0]
        return float(np.linalg.norm(got - x[0]) / np.linalg.norm(x[0]))

    bucketed, whole = relative_error(QSGD(4, bucket=512)), relative_error(QSGD(4, bucket=10**6))
    # Alistarh et al.'s bound: E||Q(x) - x||^2 <= min(d / s^2, sqrt(d) / s) ||x||^2, d = bucket
    assert bucketed**2 <= np.sqrt(512) / 4
    assert whole > 3 * bucketed


def test_qsgd_needs_a_generator() -> None:
    with pytest.raises(ValueError, match="random generator"):
        QSGD().encode(delta())


def test_powersgd_recovers_a_low_rank_matrix_and_sends_vectors_dense() -> None:
    rng = np.random.default_rng(0)
    m = (rng.normal(size=(20, 2)) @ rng.normal(size=(2, 30))).astype(np.float32)
    v = rng.normal(size=7).astype(np.float32)
    codec = PowerSGD(rank=2)
    data = codec.encode([m, v], rng)
    assert len(data) == 4 * 2 * (20 + 30) + 4 * 7
    out = codec.decode(data, [(20, 30), (7,)])
    np.testing.assert_allclose(out[0], m, atol=1e-4)
    np.testing.assert_array_equal(out[1], v)


@pytest.mark.parametrize("codec", ALL, ids=lambda c: c.name)
def test_malformed_payloads_raise_decode_errors(codec: Codec) -> None:
    data = codec.encode(delta(), np.random.default_rng(0))
    with pytest.raises(DecodeError):
        codec.decode(data[:-3], SHAPES)
    with pytest.raises(DecodeError):
        codec.decode(data + b"\x00", SHAPES)


def test_topk_rejects_out_of_range_indices() -> None:
    codec = TopK(0.25)
    data = codec.encode([np.array([0, 0, 0, 5], np.float32)])
    with pytest.raises(DecodeError, match="out of range"):
        codec.decode(data, [(2,)])


@pytest.mark.parametrize("codec", [TopK(0.05), Int8(), QSGD(2), PowerSGD(1)], ids=lambda c: c.name)
def test_error_feedback_loses_nothing_only_delays(codec: Codec) -> None:
    rng = np.random.default_rng(0)
    residual: Weights | None = None
    sent_total = np.zeros(sum(sizes()))
    true_total = np.zeros(sum(sizes()))
    for r in range(5):
        d = delta(seed=r)
        payload, new = compress(codec, d, residual, rng)
        assert new is not None
        sent = codec.decode(payload, SHAPES)
        target = flatten(d) + (flatten(residual) if residual is not None else 0)
        np.testing.assert_allclose(flatten(new), target - flatten(sent), atol=1e-6)
        residual = new
        sent_total += flatten(sent)
        true_total += flatten(d)
    # what was sent plus what is still owed is exactly what the site computed
    np.testing.assert_allclose(sent_total + flatten(residual), true_total, atol=1e-5)


def test_no_feedback_for_lossless_codecs_or_when_off() -> None:
    assert compress(NoCompression(), delta(), None)[1] is None
    assert compress(TopK(0.1), delta(), None, error_feedback=False)[1] is None


def test_a_non_finite_residual_is_dropped() -> None:
    bad = delta()
    bad[0][0, 0] = np.inf
    _, residual = compress(TopK(0.01), bad, None)
    assert residual is not None and all((r == 0).all() for r in residual)
