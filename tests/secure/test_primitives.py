"""Fixed-point encoding, the mask PRG and Shamir sharing on their own."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from medsilo.secure import shamir
from medsilo.secure.fixed_point import FixedPoint
from medsilo.secure.prg import MaskPRG, derive_seed


@pytest.mark.parametrize("bits", [20, 32, 48])
def test_sum_of_encodings_decodes_to_the_sum_within_resolution(bits: int) -> None:
    n = 7
    fp = FixedPoint(bits, clip=2.0, num_sites=n)
    rng = np.random.default_rng(bits)
    xs = [rng.uniform(-2, 2, 1000) for _ in range(n)]
    total = np.zeros(1000, dtype=fp.dtype)
    for x in xs:
        enc, clipped = fp.encode(x)
        assert clipped == 0
        total = (total + enc) & np.array((1 << bits) - 1, dtype=fp.dtype)
    err = np.abs(fp.decode(total) - np.sum(xs, axis=0))
    assert err.max() <= n * 0.5 * fp.resolution + 1e-12
    assert err.max() > 0  # rounding is real: the check above is not vacuous


def test_extreme_values_do_not_overflow_and_clipping_is_counted() -> None:
    n = 100
    fp = FixedPoint(32, clip=1.0, num_sites=n)
    hi, clipped = fp.encode(np.array([5.0, 1.0, -1.0, -9.0]))
    assert clipped == 2
    total = sum((hi.astype(np.uint64) for _ in range(n)), np.zeros(4, np.uint64))
    decoded = fp.decode((total % (1 << 32)).astype(np.uint32))
    np.testing.assert_allclose(decoded, [n, n, -n, -n], atol=n * fp.resolution)


def test_settings_that_could_overflow_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot hold the sum of 100000 sites"):
        FixedPoint(16, clip=1.0, num_sites=100_000)
    with pytest.raises(ValueError, match="NaN or Inf"):
        FixedPoint(32, 1.0, 2).encode(np.array([np.nan]))


def test_prg_is_deterministic_per_seed_and_reduced_mod_2k() -> None:
    prg = MaskPRG(10_000, 20)
    a, b = derive_seed(b"secret", b"x"), derive_seed(b"secret", b"y")
    assert a != b and len(a) == 32
    np.testing.assert_array_equal(prg.expand(a), prg.expand(a))
    assert np.mean(prg.expand(a) == prg.expand(b)) < 0.01
    assert prg.expand(a).max() < 1 << 20 and prg.expand(a).max() > 1 << 19
    acc = np.zeros(10_000, np.uint32)
    prg.add_into(acc, a)
    prg.add_into(acc, a, -1)
    assert not acc.any()
    with pytest.raises(ValueError, match="32 bytes"):
        prg.expand(b"short")


def test_shamir_any_t_shares_reconstruct_and_t_minus_1_do_not() -> None:
    secret = bytes(range(32))
    shares = shamir.split(secret, 3, [1, 2, 3, 4, 5])
    for subset in itertools.combinations(shares, 3):
        assert shamir.reconstruct({x: shares[x] for x in subset}, 32) == secret
    padded = secret.rjust(shamir.SHARE_BYTES, b"\x00")
    for subset in itertools.combinations(shares, 2):
        guess = shamir.reconstruct({x: shares[x] for x in subset}, shamir.SHARE_BYTES)
        assert guess != padded
        with pytest.raises(ValueError, match="expected length"):
            shamir.reconstruct({x: shares[x] for x in subset}, 32)
    more = {x: shares[x] for x in (1, 2, 4, 5)}
    assert shamir.reconstruct(more, 32) == secret


def test_shamir_shares_are_fresh_and_serialise() -> None:
    a = shamir.split(b"k" * 32, 2, [1, 2])
    b = shamir.split(b"k" * 32, 2, [1, 2])
    assert a != b  # random coefficients
    assert shamir.share_from_bytes(shamir.share_to_bytes(a[1])) == a[1]
    with pytest.raises(ValueError, match="66 bytes"):
        shamir.share_from_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="threshold"):
        shamir.split(b"k", 3, [1, 2])
