"""Epsilon per round in the records, and the clean stop when the budget is spent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medsilo.data.base import FederatedData
from medsilo.privacy.accountant import epsilon
from medsilo.privacy.accounting import PrivacyBudgetError
from medsilo.runtime.simulation import run_federation

from ..conftest import small_config, synthetic_federation

TRAIN = {"rounds": 6, "local_steps": 4, "batch_size": 8, "lr": 0.1}
DP = {"name": "dp_fedavg", "clip": 0.5, "noise_multiplier": 2.0}


def test_dp_fedavg_records_epsilon_per_round_from_the_accountant() -> None:
    fed = synthetic_federation(num_sites=4)
    train = TRAIN | {"fraction": 0.5, "rounds": 3}
    res = run_federation(small_config(algorithm=DP, training=train), fed)
    eps = [r["privacy"]["epsilon"] for r in res.rounds]
    assert eps == [epsilon(2.0, 0.5, r, 1e-5) for r in range(1, 4)]  # q = 2 of 4 sites
    first = res.rounds[0]["privacy"]
    assert first["delta"] == 1e-5 and first["clip"] == 0.5 and first["unit"] == "site"
    assert "stop_reason" not in res.rounds[-1]


def test_budget_stops_cleanly_after_the_last_affordable_round(fed: FederatedData) -> None:
    budget = (epsilon(2.0, 1.0, 3, 1e-5) + epsilon(2.0, 1.0, 4, 1e-5)) / 2  # 3 rounds fit
    cfg = small_config(algorithm=DP, training=TRAIN, privacy={"target_epsilon": budget})
    stopped = run_federation(cfg, fed)
    assert [r["round"] for r in stopped.rounds] == [1, 2, 3]
    last = stopped.rounds[-1]
    assert last["privacy"]["epsilon"] <= budget
    assert "round 4 would take epsilon" in last["stop_reason"] and "test" in last
    # The final model is round 3's: the same as a plain 3-round run.
    three = run_federation(small_config(algorithm=DP, training=TRAIN | {"rounds": 3}), fed)
    for a, b in zip(stopped.weights, three.weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_budget_too_small_for_one_round_fails_before_training(fed: FederatedData) -> None:
    cfg = small_config(algorithm=DP, training=TRAIN, privacy={"target_epsilon": 0.1})
    with pytest.raises(PrivacyBudgetError, match="one round already costs epsilon"):
        run_federation(cfg, fed)


def test_auto_noise_spends_the_budget_over_the_planned_rounds(fed: FederatedData) -> None:
    algo = DP | {"noise_multiplier": "auto"}
    cfg = small_config(algorithm=algo, training=TRAIN, privacy={"target_epsilon": 4.0})
    res = run_federation(cfg, fed)
    assert len(res.rounds) == 6 and "stop_reason" not in res.rounds[-1]
    assert 3.9 < res.rounds[-1]["privacy"]["epsilon"] <= 4.0


def test_experiment_summary_says_why_training_stopped(tmp_path: Path, fed: FederatedData) -> None:
    from medsilo.experiment import run_experiment

    budget = (epsilon(2.0, 1.0, 2, 1e-5) + epsilon(2.0, 1.0, 3, 1e-5)) / 2
    cfg = small_config(algorithm=DP, training=TRAIN, privacy={"target_epsilon": budget})
    # run_experiment builds the federation from the config: heart disease, 4 hospitals.
    out = run_experiment(cfg, tmp_path / "run")
    summary = json.loads((out.run_dir / "summary.json").read_text())
    assert summary["rounds_completed"] == 2 and "round 3 would take" in summary["stop_reason"]
    assert summary["privacy"]["epsilon"] <= budget
    lines = (out.run_dir / "rounds.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[-1])["stop_reason"] == summary["stop_reason"]


def test_results_table_shows_epsilon_next_to_accuracy(tmp_path: Path) -> None:
    from medsilo.experiment import run_experiment
    from medsilo.report.runs import load_run
    from medsilo.report.table import build_table

    train = TRAIN | {"rounds": 2}
    dp = run_experiment(small_config(algorithm=DP, training=train), tmp_path / "dp")
    plain = run_experiment(small_config(training=train), tmp_path / "plain")
    table = build_table([load_run(dp.run_dir), load_run(plain.run_dir)])
    assert [row["epsilon"] for row in table.rows] == [
        f"{epsilon(2.0, 1.0, 2, 1e-5):.2f} (1e-05)",
        None,
    ]


def test_suite_table_carries_epsilon(tmp_path: Path) -> None:
    from medsilo.suite import run_suite

    train = TRAIN | {"rounds": 2}
    configs = [
        small_config(name="dp", algorithm=DP, training=train),
        small_config(name="plain", training=train),
    ]
    rows = run_suite(configs, [0], tmp_path / "suite", "dp vs plain")
    assert rows[0].as_dict()["epsilon"]["mean"] == epsilon(2.0, 1.0, 2, 1e-5)
    assert rows[1].as_dict()["epsilon"] is None
