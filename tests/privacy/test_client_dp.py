"""Client-level DP as a layer: DP-FedAvg unchanged, DP-FedProx runs, DP-SCAFFOLD refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from medsilo.algorithms.fedprox import FedProx
from medsilo.algorithms.scaffold import Scaffold
from medsilo.config import ConfigError
from medsilo.privacy.client_dp import ClientDP
from medsilo.runtime.factory import build_run_algorithm
from medsilo.runtime.simulation import run_federation
from medsilo.types import global_norm

from ..algorithms.test_algorithms import SGD, initial, one_round, task_for
from ..conftest import small_config, synthetic_federation

CLIENT_DP = {"clip": 0.5, "noise_multiplier": 0.8}
TRAINING = {"rounds": 3, "local_steps": 5, "batch_size": 8, "lr": 0.1}


def _run(**overrides: Any) -> Any:
    return run_federation(small_config(training=TRAINING, **overrides), synthetic_federation())


def _same_run(a: Any, b: Any) -> None:
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(x, y)
    assert [r["privacy"] for r in a.rounds] == [r["privacy"] for r in b.rounds]


@pytest.mark.parametrize(
    "extra", [{}, {"adaptive_clip": {"count_stddev": 1.0}}, {"noise": "local"}]
)
def test_dp_fedavg_is_fedavg_inside_the_layer_bit_for_bit(extra: dict[str, Any]) -> None:
    alias = _run(algorithm={"name": "dp_fedavg", **CLIENT_DP, **extra})
    layered = _run(algorithm={"name": "fedavg"}, privacy={"client_dp": {**CLIENT_DP, **extra}})
    _same_run(alias, layered)


def test_dp_fedprox_without_the_proximal_term_is_dp_fedavg() -> None:
    fedprox = _run(algorithm={"name": "fedprox", "mu": 0.0}, privacy={"client_dp": CLIENT_DP})
    _same_run(fedprox, _run(algorithm={"name": "dp_fedavg", **CLIENT_DP}))


def test_dp_fedprox_clips_noises_and_is_accounted() -> None:
    cfg = small_config(
        training=TRAINING,
        algorithm={"name": "fedprox", "mu": 0.5},
        privacy={"client_dp": CLIENT_DP, "target_epsilon": 50.0},
    )
    algorithm = build_run_algorithm(cfg, 4)
    assert isinstance(algorithm, ClientDP) and isinstance(algorithm.inner, FedProx)
    fed = synthetic_federation()
    updates = one_round(algorithm, fed, initial(fed), [{} for _ in fed.sites])[1]
    assert all(global_norm(u.delta) <= CLIENT_DP["clip"] + 1e-6 for u in updates)
    result = run_federation(cfg, fed)
    privacy = result.rounds[-1]["privacy"]
    assert privacy["noise_multiplier"] == CLIENT_DP["noise_multiplier"]
    assert 0 < privacy["epsilon"] <= 50.0
    plain = _run(algorithm={"name": "fedprox", "mu": 0.5})
    assert not all(np.array_equal(a, b) for a, b in zip(result.weights, plain.weights, strict=True))


def test_dp_scaffold_is_refused_because_its_control_variate_carries_the_update() -> None:
    """The reason the refusal gives: delta_c_i = -c - delta_i / (K lr), the site's raw update
    rescaled, so clipping and noising only delta_i would still release delta_i."""
    fed = synthetic_federation(num_sites=2)
    w0 = initial(fed)
    algo = Scaffold()
    state = algo.init_server_state(w0, task_for(fed, 0).layout)
    state["c"] = [np.full_like(w, 0.01) for w in w0]
    update = algo.local_update(task_for(fed, 0), w0, algo.broadcast(state))
    k_lr = update.num_steps * SGD.lr
    for dc, c, d in zip(update.extras["delta_c"], state["c"], update.delta, strict=True):
        np.testing.assert_allclose(dc, -c - d / k_lr, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="cannot wrap algorithm 'scaffold'"):
        ClientDP(Scaffold())
    with pytest.raises(ConfigError, match="delta_c_i = -c - delta_i"):
        small_config(algorithm={"name": "scaffold"}, privacy={"client_dp": CLIENT_DP})


def test_dp_fedprox_under_fedbuff_takes_one_update_per_site_per_buffer() -> None:
    """The asynchronous engine treats any algorithm inside the layer as client-level DP:
    a buffer larger than the federation is refused, a smaller one is accounted per site."""
    fed = synthetic_federation()
    dp = {"algorithm": {"name": "fedprox"}, "privacy": {"client_dp": CLIENT_DP}}
    too_big = {"mode": "fedbuff", "buffer_size": len(fed.sites) + 1}
    with pytest.raises(ConfigError, match="at most one update per site per buffer"):
        run_federation(small_config(training=TRAINING, asynchrony=too_big, **dp), fed)
    fits = {"mode": "fedbuff", "buffer_size": 2, "updates": 6}
    result = run_federation(small_config(training=TRAINING, asynchrony=fits, **dp), fed)
    privacy = result.rounds[-1]["privacy"]
    assert privacy["noise_group"] == 2 and sum(privacy["releases_per_site"].values()) == 6
