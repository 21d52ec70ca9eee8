"""DP-FedAvg's noise placement and adaptive clipping, on synthetic updates."""

from __future__ import annotations

import numpy as np
import pytest

from medsilo.algorithms.dp_fedavg import UNCLIPPED, DPFedAvg
from medsilo.privacy.config import AdaptiveClipConfig
from medsilo.types import Update


def zero_updates(m: int, size: int) -> list[Update]:
    return [Update(f"s{i}", [np.zeros(size, np.float64)], 10, 1) for i in range(m)]


def test_local_noise_shares_sum_to_the_central_noise() -> None:
    m, size, z, clip = 10, 40_000, 1.3, 0.7
    central = DPFedAvg(clip=clip, noise_multiplier=z, seed=1, noise="central", cohort=m)
    state = central.init_server_state([], None)  # type: ignore[arg-type]
    mean_central, _ = central.aggregate([], zero_updates(m, size), state, None, m)  # type: ignore[arg-type]

    local = DPFedAvg(clip=clip, noise_multiplier=z, seed=1, noise="local", cohort=m)
    shares = [
        local.local_noise(u.delta, 0.0, clip, np.random.default_rng(i))[0]
        for i, u in enumerate(zero_updates(m, size))
    ]
    one = float(np.std(shares[0][0]))
    noisy = [Update(f"s{i}", d, 10, 1) for i, d in enumerate(shares)]
    mean_local, _ = local.aggregate([], noisy, state, None, m)  # type: ignore[arg-type]

    target = z * clip / m
    assert float(np.std(mean_central[0])) == pytest.approx(target, rel=0.03)
    assert float(np.std(mean_local[0])) == pytest.approx(target, rel=0.03)  # no extra noise
    assert one == pytest.approx(z * clip / np.sqrt(m), rel=0.03)  # one share alone: 1/sqrt(m)


def run_adaptive(norms: np.random.Generator, quantile: float, z: float, rounds: int) -> list[float]:
    m = 50
    algo = DPFedAvg(
        clip=20.0,
        noise_multiplier=z,
        seed=0,
        adaptive=AdaptiveClipConfig(target_quantile=quantile, lr=0.2),
        cohort=m,
    )
    state = algo.init_server_state([], None)  # type: ignore[arg-type]
    clips = []
    for _ in range(rounds):
        clip = algo.clip_of(state)
        clips.append(clip)
        ups = zero_updates(m, 1)
        for u, norm in zip(ups, norms.lognormal(0.0, 0.5, size=m), strict=True):
            u.metrics[UNCLIPPED] = float(norm <= clip)
        _, state = algo.aggregate([], ups, state, None, m)  # type: ignore[arg-type]
    return clips


@pytest.mark.parametrize(("quantile", "z"), [(0.5, 0.0), (0.8, 1.0), (0.3, 1.0)])
def test_adaptive_clip_converges_to_the_target_quantile(quantile: float, z: float) -> None:
    clips = run_adaptive(np.random.default_rng(0), quantile, z, 400)
    truth = float(np.quantile(np.random.default_rng(1).lognormal(0.0, 0.5, 200_000), quantile))
    settled = float(np.mean(clips[-150:]))
    assert clips[0] == 20.0
    assert settled == pytest.approx(truth, rel=0.1)


def test_adaptive_clip_travels_in_the_broadcast_and_server_state() -> None:
    algo = DPFedAvg(clip=2.0, noise_multiplier=0.0, adaptive=AdaptiveClipConfig(), cohort=4)
    state = algo.init_server_state([], None)  # type: ignore[arg-type]
    assert algo.broadcast(state)["clip"][0].tolist() == [2.0]
    ups = zero_updates(4, 3)
    for u in ups:
        u.metrics[UNCLIPPED] = 1.0  # every update under the clip: the clip must shrink
    _, after = algo.aggregate([], ups, state, None, 4)  # type: ignore[arg-type]
    assert algo.clip_of(after) == pytest.approx(2.0 * np.exp(-0.2 * (1.0 - 0.5)))
    fixed = DPFedAvg(clip=2.0, noise_multiplier=0.0)
    assert fixed.broadcast(fixed.init_server_state([], None)) == {}  # type: ignore[arg-type]
