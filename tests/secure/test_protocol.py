"""The masking protocol end to end: exact sums, uniform-looking masked inputs, dropouts,
aborts and tampering."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from medsilo.secure.coordinator import SecAggCoordinator
from medsilo.secure.exchange import secure_sum
from medsilo.secure.fixed_point import FixedPoint, Ring
from medsilo.secure.messages import (
    SEALED_SHARE_BYTES,
    AdvertiseKeys,
    MalformedMessage,
    MaskedInput,
    UnmaskShares,
    parse,
)
from medsilo.secure.protocol import SecAggAbort, SecAggError, SecAggParams
from medsilo.secure.site import SecAggSite

N, T, LENGTH = 6, 4, 2000


def encoded_inputs(n: int = N, length: int = LENGTH, seed: int = 0) -> tuple[FixedPoint, dict]:
    fp = FixedPoint(32, clip=1.0, num_sites=n)
    rng = np.random.default_rng(seed)
    floats = {i: rng.uniform(-1, 1, length) for i in range(1, n + 1)}
    return fp, {i: (x, fp.encode(x)[0]) for i, x in floats.items()}


def params(length: int = LENGTH, t: int = T) -> SecAggParams:
    return SecAggParams(threshold=t, bits=32, length=length, label=b"test/1")


def plain_sum(inputs: dict, sites: list[int]) -> np.ndarray:
    return np.sum([inputs[i][0] for i in sites], axis=0)


@pytest.mark.parametrize("bits", [20, 32, 48])
def test_masked_inputs_sum_to_the_plain_sum_within_resolution(bits: int) -> None:
    fp = FixedPoint(bits, clip=1.0, num_sites=N)
    rng = np.random.default_rng(bits)
    floats = {i: rng.uniform(-1, 1, LENGTH) for i in range(1, N + 1)}
    encoded = {i: fp.encode(x)[0] for i, x in floats.items()}
    p = SecAggParams(threshold=T, bits=bits, length=LENGTH, label=b"test/1")
    result = secure_sum(encoded, p, {3: "masked"})
    assert result.survivors == [1, 2, 4, 5, 6] and result.recovered == [3]
    assert result.total.dtype == fp.dtype and int(result.total.max()) < 1 << bits
    err = np.abs(fp.decode(result.total) - sum(floats[i] for i in result.survivors))
    assert err.max() <= N * 0.5 * fp.resolution


def _uniformity_pvalues(values: Ring) -> list[float]:
    """Chi-square on the byte histogram and on the top-byte histogram, KS on ``v / 2**32``."""
    raw = np.frombuffer(values.tobytes(), dtype=np.uint8)
    top = (values >> 24).astype(np.int64)
    return [
        float(stats.chisquare(np.bincount(raw, minlength=256)).pvalue),
        float(stats.chisquare(np.bincount(top, minlength=256)).pvalue),
        float(stats.kstest(values / 2.0**32, "uniform").pvalue),
    ]


def test_a_single_masked_update_is_statistically_uniform() -> None:
    length = 100_000
    fp = FixedPoint(32, clip=1.0, num_sites=3)
    x = fp.encode(np.full(length, 0.25))[0]  # maximally non-uniform: one repeated value
    assert max(_uniformity_pvalues(x)) < 1e-12  # the tests do reject a structured vector
    seen: dict[int, bytes] = {}

    def spy(phase: str, sender: int, data: bytes) -> bytes:
        if phase == "masked":
            seen[sender] = data
        return data

    secure_sum({1: x, 2: x.copy(), 3: x.copy()}, params(length, t=2), wire=spy)
    for data in seen.values():
        msg = parse(data)
        assert isinstance(msg, MaskedInput)
        y = np.frombuffer(msg.values, dtype=np.uint32)
        assert np.mean(y == x) < 1e-3  # no coordinate leaks through
        assert min(_uniformity_pvalues(y)) > 1e-6  # fails by chance with p < 3e-6


@pytest.mark.parametrize(
    "drop",
    [
        {2: "keys", 5: "keys"},
        {2: "shares", 5: "shares"},
        {2: "masked", 5: "masked"},
        {2: "unmask", 5: "unmask"},
        {1: "shares", 6: "masked"},
        {3: "keys", 4: "unmask"},
    ],
    ids=lambda d: "+".join(sorted(set(d.values()))),
)
def test_dropouts_up_to_n_minus_t_are_recovered(drop: dict[int, str]) -> None:
    fp, inputs = encoded_inputs()
    result = secure_sum({i: enc for i, (_, enc) in inputs.items()}, params(), drop)
    # A site counts iff its masked input arrived; a site lost at unmasking still counts.
    expected = [i for i in inputs if drop.get(i) not in ("keys", "shares", "masked")]
    assert result.survivors == expected
    assert result.recovered == [i for i, p in drop.items() if p == "masked"]
    err = np.abs(fp.decode(result.total) - plain_sum(inputs, expected))
    assert err.max() <= N * 0.5 * fp.resolution


@pytest.mark.parametrize(
    ("phase", "where"),
    [
        ("keys", "key advertisement"),
        ("shares", "key sharing"),
        ("masked", "masked input"),
        ("unmask", "unmasking"),
    ],
)
def test_more_dropouts_than_n_minus_t_abort_cleanly(phase: str, where: str) -> None:
    _, inputs = encoded_inputs()
    with pytest.raises(SecAggAbort, match=f"aborted at {where}: 3 of 6 sites remain.*threshold"):
        secure_sum(
            {i: enc for i, (_, enc) in inputs.items()}, params(), dict.fromkeys([1, 2, 3], phase)
        )


def test_a_tampered_relayed_share_is_refused_by_its_recipient() -> None:
    _, inputs = encoded_inputs()

    def flip(phase: str, sender: int, data: bytes) -> bytes:
        if phase == "shares" and sender == 2:
            return data[:-1] + bytes([data[-1] ^ 1])  # last byte of a sealed share
        return data

    with pytest.raises(SecAggError, match="from site 2 to site 6 fail authentication"):
        secure_sum({i: enc for i, (_, enc) in inputs.items()}, params(), wire=flip)


def test_a_tampered_unmasking_share_aborts_instead_of_a_wrong_sum() -> None:
    _, inputs = encoded_inputs()

    def corrupt(phase: str, sender: int, data: bytes) -> bytes:
        if phase == "unmask" and sender == 1:
            msg = parse(data)
            assert isinstance(msg, UnmaskShares)
            share = bytearray(msg.b_shares[3])
            share[-1] ^= 1
            return UnmaskShares(1, {**msg.b_shares, 3: bytes(share)}, msg.sk_shares).encode()
        return data

    with pytest.raises(SecAggAbort, match="site 3 does not match its commitment"):
        secure_sum({i: enc for i, (_, enc) in inputs.items()}, params(), wire=corrupt)


def test_a_wrong_length_masked_input_is_rejected_and_its_site_recovered() -> None:
    fp, inputs = encoded_inputs()

    def truncate(phase: str, sender: int, data: bytes) -> bytes:
        if phase == "masked" and sender == 4:
            return MaskedInput(4, parse(data).values[:-4]).encode()  # type: ignore[union-attr]
        return data

    result = secure_sum({i: enc for i, (_, enc) in inputs.items()}, params(), wire=truncate)
    assert "expected 8000" in result.log.rejected[4]
    assert result.recovered == [4]
    err = np.abs(fp.decode(result.total) - plain_sum(inputs, [1, 2, 3, 5, 6]))
    assert err.max() <= N * 0.5 * fp.resolution


def test_malformed_records_do_not_parse() -> None:
    good = AdvertiseKeys(1, b"a" * 32, b"b" * 32).encode()
    assert parse(good) == AdvertiseKeys(1, b"a" * 32, b"b" * 32)
    for bad in (good[:-1], good + b"x", b"\x09" + good[1:], b""):
        with pytest.raises(MalformedMessage):
            parse(bad)
    assert SEALED_SHARE_BYTES == 12 + 8 + 2 * 66 + 16


def test_a_site_refuses_an_inconsistent_survivor_list_and_out_of_order_calls() -> None:
    _, inputs = encoded_inputs(n=3)
    p = params(t=2)
    sites = {i: SecAggSite(i, enc, p) for i, (_, enc) in inputs.items()}
    coordinator = SecAggCoordinator(p)
    keys = coordinator.collect_keys({i: s.advertise().encode() for i, s in sites.items()})
    with pytest.raises(SecAggError, match="out of order"):
        sites[1].unmask(coordinator.collect_masked({}))  # type: ignore[arg-type]
    relayed = coordinator.relay_shares({i: s.share_keys(keys).encode() for i, s in sites.items()})
    sites[2].masked_input(relayed[2])
    from medsilo.secure.messages import Survivors

    with pytest.raises(SecAggError, match="inconsistent"):
        sites[2].unmask(Survivors(frozenset({2, 9})))
