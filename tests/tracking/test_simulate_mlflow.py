"""``medsilo simulate --mlflow`` / ``--mlflow-uri``: one MLflow run per run directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from medsilo.cli import app

runner = CliRunner()

SMALL = """
name: tiny
data: {dataset: heart_disease}
training: {rounds: 2, local_steps: 3, batch_size: 8, lr: 0.1}
"""


@pytest.mark.slow  # two runs end to end, with their suite report
def test_simulate_logs_each_seed_as_a_run(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(SMALL)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["simulate", str(cfg), "--seeds", "0-1", "--out", str(tmp_path / "suite")]
    result = runner.invoke(app, [*args, "--mlflow-uri", uri, "--no-progress"])
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("medsilo")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert sorted((r.info.run_name, r.data.tags["medsilo.seed"]) for r in runs) == [
        ("tiny-s0", "0"),
        ("tiny-s1", "1"),
    ]
    assert {r.data.params["tracking.mlflow.enabled"] for r in runs} == {"true"}
    assert all(r.info.status == "FINISHED" for r in runs)
    assert "enabled: true" in (tmp_path / "suite" / "tiny-s0" / "config.yaml").read_text()


def test_simulate_refuses_a_tracking_uri_without_scheme_before_writing(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(SMALL)
    out = tmp_path / "suite"
    result = runner.invoke(
        app, ["simulate", str(cfg), "--out", str(out), "--mlflow-uri", "runs/mlflow.db"]
    )
    assert result.exit_code == 2
    assert "tracking.mlflow.tracking_uri" in result.output and "scheme" in result.output
    assert not out.exists()
