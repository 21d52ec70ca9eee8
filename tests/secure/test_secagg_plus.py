"""SecAgg+ (Bell et al. 2020): the neighbour graph, its parameters, and the protocol on it.

Sums must be exact (within fixed point) with and without dropouts, each site must talk
about its neighbours only, and a neighbourhood left below the threshold must abort the
round rather than produce a wrong sum.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from medsilo.secure.config import SecureAggregationConfig
from medsilo.secure.exchange import secure_sum
from medsilo.secure.fixed_point import FixedPoint
from medsilo.secure.graph_parameters import choose_graph, hypergeometric_tail, security_log2
from medsilo.secure.messages import ShareKeys, UnmaskShares, parse
from medsilo.secure.neighbour_graph import harary_neighbours
from medsilo.secure.protocol import SecAggAbort, SecAggParams

N, LENGTH = 50, 256


def sparse_params(n: int = N, k: int = 8, t: int = 6, label: bytes = b"plus/1") -> SecAggParams:
    return SecAggParams(threshold=t, bits=32, length=LENGTH, label=label, neighbours=k, cohort=n)


def floats_and_encoded(n: int = N) -> tuple[FixedPoint, dict[int, np.ndarray], dict]:
    fp = FixedPoint(32, clip=1.0, num_sites=n)
    rng = np.random.default_rng(n)
    floats = {i: rng.uniform(-1, 1, LENGTH) for i in range(1, n + 1)}
    return fp, floats, {i: fp.encode(x)[0] for i, x in floats.items()}


def test_the_harary_graph_is_k_regular_symmetric_and_fixed_by_the_label() -> None:
    graph = harary_neighbours(N, 8, b"plus/1")
    for i, near in enumerate(graph, start=1):
        assert len(near) == 8 and i not in near and near <= set(range(1, N + 1))
        assert all(i in graph[j - 1] for j in near)
    assert harary_neighbours(N, 8, b"plus/1") == graph  # every party computes the same one
    assert harary_neighbours(N, 8, b"plus/2") != graph  # a new round, a new permutation
    # Without the permutation site i would neighbour i +- 1..4: the order is shuffled.
    assert any(
        near != {(i - 1 + d) % N + 1 for d in (-4, -3, -2, -1, 1, 2, 3, 4)}
        for i, near in enumerate(graph, 1)
    )
    assert all(len(near) == 4 for near in harary_neighbours(5, 8, b"x"))  # k >= n-1: complete
    with pytest.raises(ValueError, match="even k"):
        harary_neighbours(N, 7, b"x")


@pytest.mark.parametrize("n", [100, 1000, 10000])
def test_chosen_parameters_meet_the_bounds_with_logarithmic_k(n: int) -> None:
    choice = choose_graph(n, 0.1, 0.1, 40, 30)
    k, t = choice.neighbours, choice.threshold
    assert k % 2 == 0 and k < n - 1 and k < 20 * np.log2(n)
    assert choice.security_log2 <= -40 and choice.correctness_log2 <= -30
    assert 2 * t >= k + 2  # with no corruption: t above half the neighbourhood
    # t is the smallest that meets the security bound: one less does not.
    assert security_log2(n, n // 10, 2 * (n // 10), k, t - 1) > -40
    assert choose_graph(n, 0.1, 0.1, 40, 30, neighbours=k) == choice
    assert hypergeometric_tail(n - 1, n // 10, k, k - t + 1) * n <= 2.0**-30


def test_parameters_that_no_graph_meets_are_refused() -> None:
    with pytest.raises(ValueError, match="no neighbour count and threshold meet"):
        choose_graph(40, 0.45, 0.45, 40, 30)
    with pytest.raises(ValueError, match=r"\(k=4\)"):
        choose_graph(200, 0.1, 0.1, 40, 30, neighbours=4)


@pytest.mark.parametrize(
    "drop",
    [
        {},
        {3: "masked", 9: "masked", 17: "masked", 30: "masked", 44: "masked"},
        {5: "shares", 6: "unmask", 7: "keys"},
    ],
    ids=["no-dropouts", "10%-before-masked-input", "every-phase"],
)
def test_sums_are_exact_at_50_sites(drop: dict[int, str]) -> None:
    fp, floats, encoded = floats_and_encoded()
    result = secure_sum(encoded, sparse_params(), drop)
    expected = [i for i in encoded if drop.get(i) not in ("keys", "shares", "masked")]
    assert result.survivors == expected
    assert result.recovered == sorted(i for i, p in drop.items() if p == "masked")
    err = np.abs(fp.decode(result.total) - np.sum([floats[i] for i in expected], axis=0))
    assert err.max() <= N * 0.5 * fp.resolution


def test_each_site_talks_about_its_neighbours_only() -> None:
    _, _, encoded = floats_and_encoded()
    p = sparse_params()
    graph = harary_neighbours(N, 8, p.label)
    sent: dict[str, dict[int, bytes]] = {}

    def record(phase: str, sender: int, data: bytes) -> bytes:
        sent.setdefault(phase, {})[sender] = data
        return data

    dropped = {3: "masked", 4: "masked"}
    secure_sum(encoded, p, dropped, record)
    for i, data in sent["shares"].items():
        msg = parse(data)
        assert isinstance(msg, ShareKeys) and set(msg.sealed) == graph[i - 1]  # k partners
    for i, data in sent["unmask"].items():
        msg = parse(data)
        assert isinstance(msg, UnmaskShares)
        assert set(msg.b_shares) == (graph[i - 1] - set(dropped)) | {i}
        assert set(msg.sk_shares) == graph[i - 1] & set(dropped)
    # A site's protocol bytes depend on k, not on n: the same at 50 and at 120 sites.
    _, _, bigger = floats_and_encoded(120)
    big: dict[int, bytes] = {}
    secure_sum(
        bigger,
        sparse_params(120),
        None,
        lambda ph, i, d: big.setdefault(i, d) if ph == "shares" else d,
    )
    assert {len(d) for d in big.values()} == {len(d) for d in sent["shares"].values()}


def test_a_neighbourhood_below_the_threshold_aborts_instead_of_a_wrong_sum() -> None:
    _, _, encoded = floats_and_encoded()
    p = sparse_params()  # k = 8, t = 6: a site needs 6 of itself and its 8 neighbours
    victim = 1
    lost = sorted(harary_neighbours(N, 8, p.label)[victim - 1])[:4]
    with pytest.raises(
        SecAggAbort,
        match=rf"aborted at masked input \(neighbourhood of site {victim}\): 5 of 9 sites "
        r"remain, below the threshold of 6",
    ):
        secure_sum(encoded, p, dict.fromkeys(lost, "masked"))
    # The same four dropouts spread over different neighbourhoods are recovered.
    graph = harary_neighbours(N, 8, p.label)
    spread: list[int] = []
    for i in range(1, N + 1):
        if len(spread) < 4 and all(i not in graph[j - 1] and i != j for j in spread):
            spread.append(i)
    assert len(secure_sum(encoded, p, dict.fromkeys(spread, "masked")).recovered) == 4


def test_the_config_chooses_k_and_t_and_refuses_mixed_options() -> None:
    plus = SecureAggregationConfig(enabled=True, graph="harary")
    assert plus.shape_for(1000) == (114, 78)
    assert SecureAggregationConfig(enabled=True).shape_for(1000) == (0, 600)  # complete
    assert SecureAggregationConfig(graph="harary", neighbours=2).shape_for(4) == (2, 2)
    for bad, why in [
        ({"neighbours": 8}, "apply to graph: harary only"),
        ({"graph": "harary", "threshold": 0.7}, "threshold applies to graph: complete"),
        ({"graph": "harary", "neighbours": 7}, "must be even"),
        ({"graph": "harary", "mechanism": "ckks"}, "applies to mechanism: masking only"),
    ]:
        with pytest.raises(ValidationError, match=why):
            SecureAggregationConfig(**bad)


@pytest.mark.parametrize("k", [0, 19], ids=["complete", "harary-k-at-least-n-1"])
def test_the_complete_graph_still_shares_with_every_site(k: int) -> None:
    fp, floats, encoded = floats_and_encoded(12)
    p = SecAggParams(threshold=8, bits=32, length=LENGTH, label=b"plus/1", neighbours=k, cohort=12)
    shares: dict[int, ShareKeys] = {}

    def record(phase: str, sender: int, data: bytes) -> bytes:
        msg = parse(data)
        if isinstance(msg, ShareKeys):
            shares[sender] = msg
        return data

    result = secure_sum(encoded, p, {4: "masked"}, record)
    assert all(set(m.sealed) == set(range(1, 13)) - {i} for i, m in shares.items())
    err = np.abs(fp.decode(result.total) - np.sum([floats[i] for i in result.survivors], axis=0))
    assert result.recovered == [4] and err.max() <= 12 * 0.5 * fp.resolution
