"""The in-process engine: determinism, sampling, records, baselines."""

from __future__ import annotations

import numpy as np
import pytest

from medsilo.runtime.federation import sample_sites
from medsilo.runtime.simulation import run_federation

from ..conftest import small_config, synthetic_federation


def test_same_seed_same_weights_and_records() -> None:
    fed = synthetic_federation()
    cfg = small_config(algorithm={"name": "fedprox", "mu": 0.1})
    a = run_federation(cfg, fed)
    b = run_federation(cfg, fed)
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(x, y)
    assert [r["train_loss"] for r in a.rounds] == [r["train_loss"] for r in b.rounds]


def test_different_seed_gives_different_weights() -> None:
    fed = synthetic_federation()
    a = run_federation(small_config(seed=0), fed)
    b = run_federation(small_config(seed=1), fed)
    assert any(not np.allclose(x, y) for x, y in zip(a.weights, b.weights, strict=True))


def test_training_improves_the_global_model() -> None:
    fed = synthetic_federation()
    res = run_federation(
        small_config(training={"rounds": 8, "local_steps": 10, "batch_size": 8, "lr": 0.2}), fed
    )
    first, last = res.rounds[0], res.rounds[-1]
    assert last["test"]["loss"] < first["test"]["loss"]
    assert last["test"]["accuracy"] > 0.75


def test_round_record_fields() -> None:
    fed = synthetic_federation(num_sites=3)
    res = run_federation(small_config(evaluation={"every": 2}), fed)
    assert [r["round"] for r in res.rounds] == [1, 2, 3]
    assert "test" not in res.rounds[0] and "test" in res.rounds[1] and "test" in res.rounds[2]
    rec = res.rounds[-1]
    assert set(rec["per_site"]) == {"h0", "h1", "h2"}
    n_params = sum(w.size for w in res.weights)
    dense = 4 * n_params + 5 * len(res.weights)  # medsilo.wire: dense fp32 + 5-byte headers
    assert rec["bytes_up"] == 3 * dense
    assert rec["bytes_down"] == 3 * dense
    accs = [v["accuracy"] for v in rec["per_site"].values()]
    assert rec["mean_site_accuracy"] == pytest.approx(np.mean(accs))


def test_sampling_fraction_and_minimum() -> None:
    names = [f"s{i}" for i in range(10)]
    picked = sample_sites(names, 0.3, 1, seed=0, rnd=1)
    assert len(picked) == 3 and set(picked) <= set(names)
    assert sample_sites(names, 0.3, 1, seed=0, rnd=1) == picked
    assert len(sample_sites(names, 0.1, 4, seed=0, rnd=1)) == 4
    rounds = {tuple(sample_sites(names, 0.3, 1, seed=0, rnd=r)) for r in range(1, 20)}
    assert len(rounds) > 5  # different cohorts across rounds


def test_partial_participation_in_engine() -> None:
    fed = synthetic_federation(num_sites=4)
    res = run_federation(
        small_config(
            training={"rounds": 4, "local_steps": 5, "batch_size": 8, "lr": 0.1, "fraction": 0.5}
        ),
        fed,
    )
    assert all(len(r["sites"]) == 2 for r in res.rounds)


@pytest.mark.parametrize(
    "algo",
    [
        {"name": "fedavg"},
        {"name": "fedprox", "mu": 0.01},
        {"name": "scaffold"},
        {"name": "fednova"},
        {"name": "ditto", "lam": 0.1},
    ],
)
def test_every_algorithm_runs_and_learns(algo: dict) -> None:
    fed = synthetic_federation()
    res = run_federation(
        small_config(
            algorithm=algo, training={"rounds": 6, "local_steps": 10, "batch_size": 8, "lr": 0.1}
        ),
        fed,
    )
    assert res.rounds[-1]["test"]["loss"] < res.rounds[0]["test"]["loss"]


@pytest.mark.parametrize(
    "server",
    [{"name": "avgm", "lr": 1.0}, {"name": "adam", "lr": 0.05}, {"name": "yogi", "lr": 0.05}],
)
def test_server_optimisers_in_engine(server: dict) -> None:
    fed = synthetic_federation()
    res = run_federation(
        small_config(
            server_optimizer=server,
            training={"rounds": 6, "local_steps": 10, "batch_size": 8, "lr": 0.1},
        ),
        fed,
    )
    assert res.rounds[-1]["test"]["loss"] < res.rounds[0]["test"]["loss"]


def test_pooled_baseline_trains_on_union() -> None:
    fed = synthetic_federation()
    res = run_federation(small_config(algorithm={"name": "pooled"}), fed)
    assert res.rounds[-1]["bytes_up"] == 0
    assert len({id(w) for w in res.site_weights.values()}) == 1  # one shared model
    assert res.rounds[-1]["test"]["accuracy"] > 0.6


def test_local_only_baseline_has_one_model_per_site() -> None:
    fed = synthetic_federation()
    res = run_federation(small_config(algorithm={"name": "local"}), fed)
    ws = list(res.site_weights.values())
    assert not np.allclose(ws[0][0], ws[1][0])
    assert set(res.rounds[-1]["per_site"]) == {"h0", "h1", "h2"}
