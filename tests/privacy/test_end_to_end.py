"""DP runs from the command line and composed with secure aggregation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.runtime.simulation import run_federation

from ..conftest import small_config, synthetic_federation

runner = CliRunner()

YAML = """
name: {name}
data: {{dataset: heart_disease, partition: natural, standardize: federated}}
model: {{name: logistic}}
algorithm: {{name: dp_fedavg, clip: 0.5, noise_multiplier: 2.0}}
training: {{rounds: 6, local_steps: 5, batch_size: 8, lr: 0.1}}
privacy: {{target_epsilon: {budget}}}
"""


def test_cli_stops_at_the_budget_and_says_why(tmp_path: Path) -> None:
    cfg = tmp_path / "dp.yaml"
    cfg.write_text(YAML.format(name="dp", budget=5.0))
    out = tmp_path / "suite"
    result = runner.invoke(app, ["simulate", str(cfg), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "DP epsilon" in result.output
    summary = json.loads((out / "dp" / "summary.json").read_text())
    assert summary["rounds_completed"] < 6 and "would take epsilon" in summary["stop_reason"]
    assert summary["privacy"]["epsilon"] <= 5.0


def test_cli_refuses_a_budget_too_small_for_one_round_without_a_traceback(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "dp.yaml"
    cfg.write_text(YAML.format(name="tight", budget=0.05))
    result = runner.invoke(
        app, ["simulate", str(cfg), "--out", str(tmp_path / "o"), "--no-progress"]
    )
    assert result.exit_code != 0
    assert "one round already costs epsilon" in result.output
    assert "Traceback" not in result.output


def test_local_noise_under_secure_aggregation_matches_local_noise_in_the_clear() -> None:
    # The recommended deployment of local noise: the coordinator only learns the sum.
    fed = synthetic_federation(num_sites=4)
    train = {"rounds": 3, "local_steps": 6, "batch_size": 8, "lr": 0.1}
    algo = {"name": "dp_fedavg", "clip": 0.5, "noise_multiplier": 1.0, "noise": "local"}
    secure = run_federation(
        small_config(training=train, algorithm=algo, secure_aggregation={"enabled": True}), fed
    )
    clear = run_federation(small_config(training=train, algorithm=algo), fed)
    for a, b in zip(secure.weights, clear.weights, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)  # fixed-point masking rounds a little
    assert [r["privacy"] for r in secure.rounds] == [r["privacy"] for r in clear.rounds]
    assert (
        clear.rounds[-1]["privacy"]["epsilon_single_update"]
        > (clear.rounds[-1]["privacy"]["epsilon"])
    )
