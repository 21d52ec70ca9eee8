"""FedAsync and FedBuff on the simulated clock: weights, staleness, dropouts, refusals."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from medsilo.aggregation.staleness import fedbuff_weight, staleness_weight
from medsilo.algorithms.base import Algorithm, SiteTask
from medsilo.asynchrony import StalenessConfig
from medsilo.config import ConfigError, RunConfig, parse_config
from medsilo.data.base import FederatedData
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.simulation import FederationResult, run_federation
from medsilo.types import Update, Weights

from ..conftest import small_config, synthetic_federation

#: Links so fast that a transfer costs ~1e-12 s: arrival times are the compute times.
INSTANT = {"uplink_mbps": 1e9, "downlink_mbps": 1e9, "latency_ms": 0}
DELTA = {"h0": 1.0, "h1": -2.0, "h2": 0.5}


class FixedDelta(Algorithm):
    """Every site sends ``DELTA[site]`` in every entry after one local step (no training)."""

    name: ClassVar[str] = "fedavg"

    def local_update(
        self, task: SiteTask, global_weights: Weights, payload: dict[str, Weights]
    ) -> Update:
        delta = [np.full_like(w, DELTA[task.site]) for w in global_weights]
        return Update(task.site, delta, num_examples=len(task.data), num_steps=1)


def _timed_config(asynchrony: dict[str, Any], **overrides: Any) -> RunConfig:
    """h0 finishes a dispatch in 1 s (8 examples at 8 / s), h1 in 2.5 s."""
    sites = {
        "default": {"network": INSTANT, "compute": {"examples_per_s": 8}},
        "overrides": {
            "h1": {"network": INSTANT, "compute": {"examples_per_s": 8, "slowdown": 2.5}}
        },
    }
    return small_config(sites=sites, asynchrony=asynchrony, **overrides)


def _run(cfg: RunConfig, fed: FederatedData, algo: Algorithm | None = None) -> FederationResult:
    return run_federation(cfg, prepared=PreparedFederation.build(cfg, fed), algorithm=algo)


def test_staleness_functions_follow_the_formulas() -> None:
    poly = StalenessConfig(function="polynomial", a=0.5)
    hinge = StalenessConfig(function="hinge", a=2.0, b=3)
    const = StalenessConfig(function="constant")
    for tau in range(12):
        assert staleness_weight(tau, const) == 1.0
        assert staleness_weight(tau, poly) == pytest.approx((1 + tau) ** -0.5)
        expected = 1.0 if tau <= 3 else 1.0 / (2.0 * (tau - 3) + 1.0)
        assert staleness_weight(tau, hinge) == pytest.approx(expected)
        assert fedbuff_weight(tau) == pytest.approx(1 / math.sqrt(1 + tau))
    assert staleness_weight(3, StalenessConfig(a=1.0)) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        staleness_weight(-1, poly)
    with pytest.raises(ValueError):
        fedbuff_weight(-1)


def test_fedasync_mixes_each_update_with_its_staleness_weight() -> None:
    fed = synthetic_federation(num_sites=2)
    asy = {"mode": "fedasync", "alpha": 0.5, "staleness": {"a": 0.5}, "updates": 3}
    res = _run(_timed_config(asy), fed, FixedDelta())
    assert [r["sites"] for r in res.rounds] == [["h0"], ["h0"], ["h1"]]
    assert [r["staleness"] for r in res.rounds] == [[0], [0], [2]]
    assert [r["sim_clock_s"] for r in res.rounds] == pytest.approx([1.0, 2.0, 2.5])
    x0 = [
        w.astype(np.float64) for w in PreparedFederation.build(small_config(), fed).initial_weights
    ]
    # t=1: h0 (from x0, staleness 0); t=2: h0 (from x1, staleness 0); t=2.5: h1 (from x0, 2)
    x1 = [w + 0.5 * 1.0 for w in x0]
    x2 = [w + 0.5 * 1.0 for w in x1]
    a = 0.5 * 3**-0.5
    x3 = [w2 + a * (w0 - 2.0 - w2) for w0, w2 in zip(x0, x2, strict=True)]
    for got, want in zip(res.weights, x3, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_fedbuff_averages_buffers_of_staleness_scaled_deltas() -> None:
    fed = synthetic_federation(num_sites=2)
    asy = {"mode": "fedbuff", "buffer_size": 2, "updates": 4}
    res = _run(_timed_config(asy), fed, FixedDelta())
    # t=1 h0, t=2 h0 -> step 1; t=2.5 h1 (from x0, one step late), t=3 h0 -> step 2
    assert [r["sites"] for r in res.rounds] == [["h0", "h0"], ["h1", "h0"]]
    assert [r["staleness"] for r in res.rounds] == [[0, 0], [1, 0]]
    assert [r["sim_clock_s"] for r in res.rounds] == pytest.approx([2.0, 3.0])
    assert [r["updates_received"] for r in res.rounds] == [2, 4]
    n0, n1 = (len(s.train) for s in fed.sites)
    x0 = [
        w.astype(np.float64) for w in PreparedFederation.build(small_config(), fed).initial_weights
    ]
    step2 = (n1 * (-2.0 / math.sqrt(2)) + n0 * 1.0) / (n0 + n1)
    for got, w in zip(res.weights, x0, strict=True):
        np.testing.assert_allclose(got, w + 1.0 + step2, rtol=1e-5, atol=1e-6)
    # the buffer goes through the server optimiser: server lr 0.5 halves both steps
    half = _run(_timed_config(asy, server_optimizer={"name": "sgd", "lr": 0.5}), fed, FixedDelta())
    for got, w in zip(half.weights, x0, strict=True):
        np.testing.assert_allclose(got, w + 0.5 * (1.0 + step2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["fedasync", "fedbuff"])
def test_a_site_that_never_returns_does_not_block_async_progress(mode: str) -> None:
    fed = synthetic_federation(num_sites=3)
    asy: dict[str, Any] = {"mode": mode, "updates": 12, "dispatch_timeout_s": 5.0}
    if mode == "fedbuff":
        asy["buffer_size"] = 2
    sites = {
        "default": {"compute": {"examples_per_s": 80}},
        "overrides": {"h1": {"compute": {"examples_per_s": 80}, "availability": {"dropout": 1.0}}},
    }
    res = _run(small_config(sites=sites, asynchrony=asy), fed)
    last = res.rounds[-1]
    assert last["updates_received"] == 12 and last["stop_reason"] == "updates"
    assert all("h1" not in r["sites"] for r in res.rounds)
    assert {s for r in res.rounds for s in r["sites"]} == {"h0", "h2"}
    assert last["test"]["accuracy"] > 0.6
    # nobody ever returns: the run stops, says why and still ends with an evaluation
    gone = {"default": {"availability": {"dropout": 1.0}}}
    dead = _run(small_config(sites=gone, asynchrony=asy), fed)
    assert dead.rounds[-1]["stop_reason"] == "no site returned an update"
    assert "test" in dead.rounds[-1]
    initial = PreparedFederation.build(small_config(), fed).initial_weights
    for got, w in zip(dead.weights, initial, strict=True):
        np.testing.assert_array_equal(got, w)


def test_async_sites_work_only_inside_their_availability_windows() -> None:
    fed = synthetic_federation(num_sites=3)
    window = {"period_s": 1000.0, "on_s": 50.0, "offset_s": 100.0}
    sites = {
        "default": {"compute": {"examples_per_s": 2}},  # 80 examples: 40 s a dispatch
        "overrides": {"h0": {"compute": {"examples_per_s": 2}, "availability": window}},
    }
    asy = {"mode": "fedbuff", "buffer_size": 1, "updates": 80}
    res = _run(small_config(sites=sites, asynchrony=asy), fed)
    h0 = [r["sim_clock_s"] for r in res.rounds if r["sites"] == ["h0"]]
    assert h0 and res.rounds[-1]["sim_clock_s"] > 1100  # ran into the second window
    assert all((t - 100.0) % 1000.0 <= 50.0 + 1e-9 for t in h0)
    assert any(t > 1100 for t in h0)


def test_async_runs_are_deterministic_for_a_seed() -> None:
    fed = synthetic_federation(num_sites=3)
    cfg = small_config(
        sites={
            "default": {"compute": {"examples_per_s": 50}, "availability": {"dropout": 0.3}},
            "overrides": {"h2": {"compute": {"examples_per_s": 50, "slowdown": 4}}},
        },
        training={"rounds": 4, "local_steps": 5, "batch_size": 8, "lr": 0.1, "fraction": 0.67},
        asynchrony={"mode": "fedbuff", "buffer_size": 2, "dispatch_timeout_s": 3.0},
    )
    a, b = _run(cfg, fed), _run(cfg, fed)
    keys = ("sites", "staleness", "sim_clock_s", "sim_time_s", "bytes_up", "bytes_down")
    assert [{k: r[k] for k in keys} for r in a.rounds] == [
        {k: r[k] for k in keys} for r in b.rounds
    ]
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(x, y)
    c = _run(cfg.with_overrides(seed=3), fed)
    assert [r["sim_clock_s"] for r in c.rounds] != [r["sim_clock_s"] for r in a.rounds]


def _heart(asynchrony: dict[str, Any]) -> RunConfig:
    return parse_config(
        {
            "name": "heart-async",
            "seed": 0,
            "data": {"dataset": "heart_disease", "standardize": "federated"},
            "training": {"rounds": 10, "local_steps": 50, "batch_size": 4, "lr": 0.01},
            "evaluation": {"every": 2},
            "sites": {
                "default": {"compute": {"examples_per_s": 400}},
                "overrides": {"va": {"compute": {"examples_per_s": 400, "slowdown": 10}}},
            },
            "asynchrony": asynchrony,
        }
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "asynchrony", [{"mode": "fedasync"}, {"mode": "fedbuff", "buffer_size": 2}]
)
def test_heart_disease_trains_asynchronously(asynchrony: dict[str, Any], tmp_path: Path) -> None:
    from medsilo.experiment import run_experiment
    from medsilo.report import build_report

    cfg = _heart(asynchrony)
    exp = run_experiment(cfg, tmp_path / "run")
    rounds = exp.result.rounds
    assert rounds[-1]["updates_received"] == 40  # 10 rounds x 4 sites' worth of trainings
    assert rounds[-1]["test"]["accuracy"] > 0.75
    assert max(s for r in rounds for s in r["staleness"]) > 0  # va's updates arrive stale
    clocks = [r["sim_clock_s"] for r in rounds]
    assert clocks == sorted(clocks)
    # synchronous rounds wait for va every time: the same trainings take longer
    sync = run_federation(_heart({"mode": "sync"}))
    assert sync.rounds[-1]["sim_clock_s"] > clocks[-1]
    html = build_report(exp.run_dir)
    assert (html.parent / "accuracy_vs_time.png").is_file()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"algorithm": {"name": "scaffold"}}, "control variates"),
        ({"algorithm": {"name": "fednova"}}, "normalises"),
        ({"algorithm": {"name": "ditto"}}, "personal models"),
        ({"robust": {"rule": "median"}}, "compares several updates"),
        ({"server_optimizer": {"name": "adam"}}, "mixing"),
        ({"algorithm": {"name": "pooled"}}, "exchanges no updates"),
        ({"training": {"rounds": 2, "local_steps": 2, "min_sites": 2}}, "min_sites"),
    ],
)
def test_unsound_fedasync_combinations_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        small_config(asynchrony={"mode": "fedasync"}, **changes)


def test_fedbuff_refusals_and_what_it_accepts() -> None:
    with pytest.raises(ConfigError, match="needs at least 5 updates"):
        small_config(asynchrony={"mode": "fedbuff", "buffer_size": 3}, robust={"rule": "krum"})
    with pytest.raises(ConfigError, match="min_sites"):
        small_config(
            asynchrony={"mode": "fedbuff", "buffer_size": 2},
            training={"rounds": 2, "local_steps": 2, "min_sites": 3},
        )
    with pytest.raises(ConfigError, match="buffer_size"):
        small_config(asynchrony={"mode": "fedbuff", "buffer_size": 0})
    with pytest.raises(ConfigError, match="asynchrony"):
        small_config(asynchrony={"mode": "fedbuff", "bogus": 1})
    ok = small_config(
        asynchrony={"mode": "fedbuff", "buffer_size": 5},
        robust={"rule": "trimmed_mean", "trim": 0.2},
        algorithm={"name": "fedprox"},
        compression={"codec": "int8"},
        server_optimizer={"name": "adam"},
    )
    assert ok.asynchrony.mode == "fedbuff"
    small_config(asynchrony={"mode": "fedasync"}, robust={"rule": "norm_bound", "max_norm": 1})


def test_async_refuses_secure_aggregation_if_configured() -> None:
    if "secure_aggregation" not in RunConfig.model_fields:
        pytest.skip("this build has no secure_aggregation config")
    with pytest.raises(ConfigError, match="pairwise masks"):
        small_config(asynchrony={"mode": "fedbuff"}, secure_aggregation={"enabled": True})


def test_fedbuff_composes_with_compression_and_norm_bounding() -> None:
    fed = synthetic_federation(num_sites=3)
    cfg = small_config(
        asynchrony={"mode": "fedbuff", "buffer_size": 2},
        compression={"codec": "topk", "k": 0.5},
        robust={"rule": "norm_bound", "max_norm": 0.5},
        algorithm={"name": "fedprox", "mu": 0.1},
    )
    res = _run(cfg, fed)
    dense = _run(small_config(asynchrony={"mode": "fedbuff", "buffer_size": 2}), fed)
    assert sum(r["bytes_up"] for r in res.rounds) < sum(r["bytes_up"] for r in dense.rounds)
    assert all(np.isfinite(w).all() for w in res.weights)
    assert not any(r["skipped"] for r in res.rounds)


def test_flower_refuses_simulated_dropouts() -> None:
    """FedBuff/FedAsync run over Flower now (tests/runtime/flower/test_asynchronous_flower.py);
    simulated dropouts stay refused there, since under Flower sites drop out for real."""
    pytest.importorskip("flwr")
    from medsilo.runtime.flower.server_app import FlowerRun, make_server_app

    fed = synthetic_federation(num_sites=2)
    cfg = small_config(sites={"default": {"availability": {"dropout": 0.1}}})
    with pytest.raises(ValueError, match="drop out for real"):
        make_server_app(cfg, PreparedFederation.build(cfg, fed), FlowerRun())
