"""Chunked masks, encodings and top-k give exactly what the one-shot computations gave."""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from medsilo.compression.codecs import Codec, TopK
from medsilo.secure.fixed_point import CHUNK, FixedPoint
from medsilo.secure.prg import CHUNK_BYTES, MaskPRG


def test_a_mask_spanning_several_chunks_is_the_aes_ctr_keystream() -> None:
    count = 2 * CHUNK_BYTES // 4 + 123  # two whole chunks and a part
    seed = bytes(range(32))
    stream = Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor().update(bytes(4 * count))
    expected = np.frombuffer(stream, dtype=np.uint32)
    np.testing.assert_array_equal(MaskPRG(count, 32).expand(seed), expected)
    np.testing.assert_array_equal(MaskPRG(count, 20).expand(seed), expected & ((1 << 20) - 1))
    acc = np.arange(count, dtype=np.uint32)
    MaskPRG(count, 32).add_into(acc, seed, -1)
    np.testing.assert_array_equal(acc, np.arange(count, dtype=np.uint32) - expected)


def test_chunked_decoding_matches_the_whole_vector_formula() -> None:
    enc = FixedPoint(32, 1.0, 3)
    x = np.random.default_rng(0).uniform(-1, 1, 2 * CHUNK + 7)
    total = enc.encode(x)[0]
    whole = enc.signed(total).astype(np.float64) / enc.scale
    np.testing.assert_array_equal(enc.decode(total), whole)


def test_topk_residual_equals_the_decoded_difference_and_selection_is_the_top_k() -> None:
    rng = np.random.default_rng(1)
    target = [
        rng.standard_normal((300, 40)).astype(np.float32),
        rng.standard_normal(77).astype(np.float32),
    ]
    codec = TopK(0.05)
    payload, residual = codec.encode_with_residual(target)
    general_payload, general = Codec.encode_with_residual(codec, target)
    assert payload == general_payload
    for r, g in zip(residual, general, strict=True):
        np.testing.assert_array_equal(r, g)
    flat = np.concatenate([t.ravel() for t in target])
    k = round(0.05 * flat.size)
    expected = np.sort(np.argsort(-np.abs(flat), kind="stable")[:k])
    np.testing.assert_array_equal(codec.select(flat), expected)


def test_topk_ties_at_the_threshold_take_the_first_indices() -> None:
    flat = np.array([0.0, 2.0, 0.0, -2.0, 1.0, 0.0], dtype=np.float32)
    np.testing.assert_array_equal(TopK(3 / 6).select(flat), [1, 3, 4])
    np.testing.assert_array_equal(TopK(4 / 6).select(flat), [0, 1, 3, 4])
    nan = np.array([1.0, np.nan, 3.0], dtype=np.float32)
    np.testing.assert_array_equal(TopK(1 / 3).select(nan), [1])
