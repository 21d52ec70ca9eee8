"""DP with FedAsync / FedBuff: per-site accounting, the budget stop, refused combinations."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from medsilo.algorithms.base import SiteTask
from medsilo.algorithms.fedavg import FedAvg
from medsilo.config import ConfigError
from medsilo.privacy.accountant import epsilon
from medsilo.privacy.accounting import PrivacyBudgetError
from medsilo.runtime.simulation import run_federation
from medsilo.types import Update, Weights

from ..conftest import small_config, synthetic_federation

TRAIN = {"rounds": 4, "local_steps": 4, "batch_size": 8, "lr": 0.1}
DP_SGD = {"dp_sgd": {"noise_multiplier": 1.0, "max_grad_norm": 1.0}}
DP_FEDAVG = {"name": "dp_fedavg", "clip": 0.5, "noise_multiplier": 1.0}
FEDBUFF = {"mode": "fedbuff", "buffer_size": 2}
FEDASYNC = {"mode": "fedasync"}
#: synthetic_federation: 120 examples per site, 75 % of them for training.
N_TRAIN = 90


class CountingFedAvg(FedAvg):
    """FedAvg that counts each site's local trainings (DP-SGD runs inside ``local_update``)."""

    def __init__(self) -> None:
        self.trainings: Counter[str] = Counter()

    def local_update(
        self, task: SiteTask, global_weights: Weights, payload: dict[str, Weights]
    ) -> Update:
        self.trainings[task.site] += 1
        return super().local_update(task, global_weights, payload)


def _dp_sgd_epsilon(trainings: int) -> float:
    """The accountant's epsilon after ``trainings`` local trainings of 4 DP-SGD steps."""
    return epsilon(1.0, TRAIN["batch_size"] / N_TRAIN, trainings * TRAIN["local_steps"], 1e-5)


@pytest.mark.parametrize("asynchrony", [FEDBUFF, FEDASYNC], ids=["fedbuff", "fedasync"])
def test_dp_sgd_accounts_every_local_training_of_each_site(asynchrony: dict[str, Any]) -> None:
    fed = synthetic_federation(num_sites=3)
    cfg = small_config(training=TRAIN, asynchrony=asynchrony, privacy=DP_SGD)
    algo = CountingFedAvg()
    res = run_federation(cfg, fed, algorithm=algo)
    last = res.rounds[-1]
    assert last["stop_reason"] == "updates"  # no budget: the run does its planned updates
    priv = last["privacy"]
    assert priv["mechanism"] == "dp_sgd"
    assert priv["releases_per_site"] == {s: algo.trainings[s] for s in fed.site_names}
    assert sum(algo.trainings.values()) >= TRAIN["rounds"] * 3  # every site trained
    for site, k in algo.trainings.items():
        assert priv["per_site"][site] == pytest.approx(_dp_sgd_epsilon(k))
    assert priv["epsilon"] == max(priv["per_site"].values())
    # Every aggregation's record carries the ledger's state, and epsilon never decreases.
    eps = [r["privacy"]["epsilon"] for r in res.rounds]
    assert eps == sorted(eps) and eps[0] > 0


@pytest.mark.parametrize("asynchrony", [FEDBUFF, FEDASYNC], ids=["fedbuff", "fedasync"])
def test_budget_retires_each_site_and_ends_the_run_cleanly(asynchrony: dict[str, Any]) -> None:
    fed = synthetic_federation(num_sites=3)
    budget = (_dp_sgd_epsilon(2) + _dp_sgd_epsilon(3)) / 2  # two trainings per site fit
    privacy = DP_SGD | {"target_epsilon": budget}
    cfg = small_config(training=TRAIN, asynchrony=asynchrony, privacy=privacy)
    algo = CountingFedAvg()
    res = run_federation(cfg, fed, algorithm=algo)
    assert dict(algo.trainings) == {s: 2 for s in fed.site_names}
    last = res.rounds[-1]
    assert last["stop_reason"].startswith("privacy budget: sites h0, h1, h2 retired")
    assert "stopped after 6 of 12 updates" in last["stop_reason"] and "test" in last
    assert last["updates_received"] == 6
    assert last["privacy"]["epsilon"] == pytest.approx(_dp_sgd_epsilon(2))
    assert all(r["privacy"]["epsilon"] <= budget for r in res.rounds)


def test_budget_too_small_for_one_training_fails_before_training() -> None:
    privacy = DP_SGD | {"target_epsilon": _dp_sgd_epsilon(1) / 2}
    cfg = small_config(training=TRAIN, asynchrony=FEDBUFF, privacy=privacy)
    with pytest.raises(PrivacyBudgetError, match="one release already costs epsilon"):
        run_federation(cfg, synthetic_federation(num_sites=3))


def test_dp_fedavg_with_fedbuff_counts_buffers_per_site_without_amplification() -> None:
    fed = synthetic_federation(num_sites=4)
    cfg = small_config(training=TRAIN | {"fraction": 0.75}, algorithm=DP_FEDAVG, asynchrony=FEDBUFF)
    res = run_federation(cfg, fed)
    contributions: Counter[str] = Counter()
    for record in res.rounds:
        if record["skipped"]:
            continue
        # A site's update enters a buffer at most once: sensitivity C of the buffer's sum.
        assert len(set(record["sites"])) == len(record["sites"]) == FEDBUFF["buffer_size"]
        contributions.update(record["sites"])
        priv = record["privacy"]
        assert priv["sampling_rate"] == 1.0 and priv["noise_group"] == 2
        assert priv["releases_per_site"] == {s: contributions[s] for s in fed.site_names}
        for site, k in contributions.items():
            assert priv["per_site"][site] == pytest.approx(epsilon(1.0, 1.0, k, 1e-5))
        assert priv["epsilon"] == max(priv["per_site"].values())
    assert sum(contributions.values()) == 2 * len(res.rounds)


def test_dp_fedavg_with_fedbuff_stops_at_the_budget() -> None:
    fed = synthetic_federation(num_sites=3)
    budget = (epsilon(1.0, 1.0, 2, 1e-5) + epsilon(1.0, 1.0, 3, 1e-5)) / 2
    cfg = small_config(
        training=TRAIN,
        algorithm=DP_FEDAVG,
        asynchrony=FEDBUFF,
        privacy={"target_epsilon": budget},
    )
    res = run_federation(cfg, fed)
    last = res.rounds[-1]
    assert "privacy budget" in last["stop_reason"] and "test" in last
    assert last["privacy"]["releases_per_site"] == {s: 2 for s in fed.site_names}
    assert all(r["privacy"]["epsilon"] <= budget for r in res.rounds)


def test_dp_fedavg_buffer_larger_than_the_federation_is_refused() -> None:
    cfg = small_config(
        training=TRAIN, algorithm=DP_FEDAVG, asynchrony={"mode": "fedbuff", "buffer_size": 4}
    )
    with pytest.raises(ConfigError, match="at most one update per site per buffer"):
        run_federation(cfg, synthetic_federation(num_sites=3))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"algorithm": DP_FEDAVG, "asynchrony": FEDASYNC}, "applies each update alone"),
        (
            {"algorithm": DP_FEDAVG | {"noise": "local"}, "asynchrony": FEDBUFF},
            "needs noise: central",
        ),
        (
            {"algorithm": DP_FEDAVG | {"adaptive_clip": {}}, "asynchrony": FEDBUFF},
            "use a fixed clip",
        ),
    ],
    ids=["fedasync", "local_noise", "adaptive_clip"],
)
def test_unsound_async_dp_combinations_are_refused_with_the_reason(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        small_config(**overrides)


def test_summary_reports_the_async_budget_stop(tmp_path: Path) -> None:
    from medsilo.experiment import run_experiment

    privacy = DP_SGD | {"target_epsilon": (_dp_sgd_epsilon(1) + _dp_sgd_epsilon(2)) / 2}
    # More updates than the budget allows: every hospital retires before the run gets there.
    cfg = small_config(training=TRAIN, asynchrony=FEDBUFF | {"updates": 500}, privacy=privacy)
    out = run_experiment(cfg, tmp_path / "run")  # heart disease, 4 hospitals
    summary = json.loads((out.run_dir / "summary.json").read_text())
    assert summary["stop_reason"].startswith("privacy budget: sites")
    assert summary["privacy"]["epsilon"] <= privacy["target_epsilon"]
    lines = (out.run_dir / "rounds.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["stop_reason"] == summary["stop_reason"]
