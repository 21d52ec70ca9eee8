"""Runs mirrored to a real local MLflow store (SQLite in tmp_path), read back with MlflowClient."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from medsilo.config import ConfigError, RunConfig
from medsilo.experiment import run_experiment
from medsilo.governance.checkpoint import checkpoint_path, load_checkpoint
from medsilo.runtime.round_record import read_rounds
from medsilo.tracking.names import params_of

from ..conftest import small_config

TINY = {"rounds": 2, "local_steps": 3, "batch_size": 8, "lr": 0.1}


def tracked_config(tmp_path: Path, **mlflow: Any) -> RunConfig:
    return small_config(
        training=TINY,
        output_dir=str(tmp_path),
        tracking={"mlflow": {"enabled": True, **mlflow}},
    )


def only_run(client: MlflowClient, experiment: str = "medsilo") -> Any:
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    runs = client.search_runs([found.experiment_id])
    assert len(runs) == 1
    return runs[0]


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_run_is_logged_to_a_local_store(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    cfg = tracked_config(tmp_path, tracking_uri=uri, experiment="heart")
    res = run_experiment(cfg, tmp_path / "run")
    client = MlflowClient(tracking_uri=uri)
    run = only_run(client, "heart")
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.tags["medsilo.config"] == "t" and run.data.tags["medsilo.seed"] == "0"
    assert run.data.tags["medsilo.run_dir"] == str((tmp_path / "run").resolve())
    assert run.data.params == params_of(cfg.model_dump(mode="json"))
    assert run.data.params["training.rounds"] == "2"

    rounds = [json.loads(x) for x in (tmp_path / "run" / "rounds.jsonl").read_text().splitlines()]
    expected = {
        "train_loss": [r["train_loss"] for r in rounds],
        "bytes_up": [r["bytes_up"] for r in rounds],
        "test/loss": [r["test"]["loss"] for r in rounds],
        "test/accuracy": [r["test"]["accuracy"] for r in rounds],
        "va/per_site/accuracy": [r["per_site"]["va"]["accuracy"] for r in rounds],
        "cleveland/site_health/train_loss": [
            r["site_health"]["cleveland"]["train_loss"] for r in rounds
        ],
        "hungarian/bytes_up_site": [r["bytes_up_site"]["hungarian"] for r in rounds],
    }
    for key, values in expected.items():
        assert history(client, run.info.run_id, key) == list(enumerate(values, start=1)), key
    summary = res.summary
    assert history(client, run.info.run_id, "summary/bytes_up_total") == [
        (2, summary["bytes_up_total"])
    ]
    assert history(client, run.info.run_id, "summary/final/test/accuracy") == [
        (2, summary["final"]["test"]["accuracy"])
    ]

    top = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert top == {"final_weights.npz", "summary.json", "config.yaml", "rounds.jsonl", "report"}
    report = {f.path for f in client.list_artifacts(run.info.run_id, "report")}
    assert "report/report.html" in report and "report/accuracy.png" in report
    # artefacts sit beside the database, never in the current directory's ./mlruns
    assert (tmp_path / "store" / "mlartifacts").is_dir() and not Path("mlruns").exists()
    saved = client.download_artifacts(run.info.run_id, "final_weights.npz", str(tmp_path))
    weights = np.load(saved)
    for i, w in enumerate(res.result.weights):
        np.testing.assert_array_equal(weights[f"arr_{i}"], w)


def test_default_store_is_sqlite_in_the_output_dir(tmp_path: Path) -> None:
    run_experiment(tracked_config(tmp_path), tmp_path / "run")
    assert (tmp_path / "mlflow.db").is_file()
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = only_run(client)
    assert run.info.artifact_uri.startswith(str(tmp_path / "mlartifacts"))


def test_unreachable_tracking_server_costs_only_the_copy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail at once, not after backoff
    cfg = tracked_config(tmp_path, tracking_uri="http://127.0.0.1:1")
    with caplog.at_level(logging.WARNING, logger="medsilo.tracking"):
        res = run_experiment(cfg, tmp_path / "run")
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("medsilo.tracking")]
    assert len(warnings) == 1
    assert "MLflow tracking stopped before the first round" in warnings[0]
    assert "127.0.0.1:1" in warnings[0]
    run = tmp_path / "run"
    lines = (run / "rounds.jsonl").read_text().splitlines()
    assert [json.loads(x)["round"] for x in lines] == [1, 2]
    assert json.loads((run / "summary.json").read_text())["rounds"] == 2
    assert len(np.load(run / "final_weights.npz").files) == len(res.result.weights)
    assert (run / "config.yaml").is_file() and (run / "ledger.sqlite").is_file()


def test_a_tracker_failing_mid_run_is_dropped_and_the_run_completes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    real_log_batch = MlflowClient.log_batch
    calls: list[str] = []

    def log_batch(self: MlflowClient, run_id: str, **kwargs: Any) -> Any:
        if kwargs.get("metrics"):  # round 2's metrics: the store goes away
            calls.append(run_id)
            if len(calls) == 2:
                raise MlflowException("store went away")
        return real_log_batch(self, run_id, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", log_batch)
    cfg = small_config(training={**TINY, "rounds": 3}, tracking={"mlflow": {"enabled": True}})
    cfg = cfg.with_overrides(tracking={"mlflow": {"enabled": True, "tracking_uri": uri}})
    with caplog.at_level(logging.WARNING, logger="medsilo.tracking"):
        run_experiment(cfg, tmp_path / "run")
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("medsilo.tracking")]
    assert len(warnings) == 1 and "stopped at round 2" in warnings[0]
    assert "store went away" in warnings[0]
    assert len(calls) == 2  # dropped: round 3 and the summary were not sent
    lines = (tmp_path / "run" / "rounds.jsonl").read_text().splitlines()
    assert [json.loads(x)["round"] for x in lines] == [1, 2, 3]
    assert (tmp_path / "run" / "summary.json").is_file()
    client = MlflowClient(tracking_uri=uri)
    run = only_run(client)
    assert run.info.status == "FAILED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1]


def test_tracking_section_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"tracking\.mlflow\.enabeld"):
        small_config(tracking={"mlflow": {"enabeld": True}})
    with pytest.raises(ConfigError, match="URI with a scheme"):
        small_config(tracking={"mlflow": {"enabled": True, "tracking_uri": "runs/mlflow.db"}})
    with pytest.raises(ConfigError, match=r"tracking\.mlflow\.experiment"):
        small_config(tracking={"mlflow": {"experiment": ""}})
    assert not small_config().tracking.mlflow.enabled


def test_mlflow_is_not_imported_unless_a_run_is_tracked() -> None:
    code = (
        "import sys, medsilo.cli, medsilo.experiment, medsilo.tracking.sinks; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow'))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_resumed_run_logs_the_rounds_it_inherits(tmp_path: Path) -> None:
    plain = small_config(training={**TINY, "rounds": 3}, governance={"checkpoint": {"every": 1}})
    run_experiment(plain, tmp_path / "first")
    records = read_rounds(tmp_path / "first" / "rounds.jsonl")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracked = plain.with_overrides(tracking={"mlflow": {"enabled": True, "tracking_uri": uri}})
    # switching tracking on keeps the checkpoint resumable: it changes no result
    resume = load_checkpoint(checkpoint_path(tmp_path / "first" / "checkpoints", 2))
    run_experiment(tracked, tmp_path / "resumed", resume=resume, prior_rounds=records[:2])
    client = MlflowClient(tracking_uri=uri)
    run = only_run(client)
    resumed = [
        json.loads(x) for x in (tmp_path / "resumed" / "rounds.jsonl").read_text().splitlines()
    ]
    assert history(client, run.info.run_id, "train_loss") == [
        (r["round"], r["train_loss"]) for r in resumed
    ]
    assert [r["round"] for r in resumed] == [1, 2, 3]


@pytest.mark.slow  # a fresh interpreter: torch and MLflow imported again
def test_a_run_that_dies_is_marked_failed_when_the_process_exits(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = f"""
import sys
from pathlib import Path
from tests.conftest import small_config
from medsilo.experiment import run_experiment

def boom(rec):
    if rec["round"] == 2:
        raise KeyboardInterrupt

tracking = {{"mlflow": {{"enabled": True, "tracking_uri": {uri!r}}}}}
cfg = small_config(training={TINY!r}, tracking=tracking)
try:
    run_experiment(cfg, Path({str(tmp_path / "run")!r}), on_round=boom)
except KeyboardInterrupt:
    sys.exit(3)
"""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), *sys.path])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 3, out.stderr
    client = MlflowClient(tracking_uri=uri)
    run = only_run(client)
    assert run.info.status == "FAILED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1, 2]
