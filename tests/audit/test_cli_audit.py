"""``medsilo audit privacy RUN`` on a tiny heart-disease run, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.config import parse_config
from medsilo.experiment import run_experiment


def _heart_run(path: Path, algorithm: dict[str, object] | None = None) -> Path:
    cfg = parse_config(
        {
            "name": "heart-audit",
            "data": {"dataset": "heart_disease", "standardize": "federated"},
            "model": {"name": "logistic"},
            "algorithm": algorithm or {"name": "fedavg"},
            "training": {"rounds": 2, "local_steps": 5, "batch_size": 8, "lr": 0.05},
        }
    )
    return run_experiment(cfg, path).run_dir


def test_missing_and_invalid_run_dirs_are_named(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["audit", "privacy", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "run directory not found" in res.output
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "suite.json").write_text(json.dumps({"runs": ["a", "b"]}))
    res = runner.invoke(app, ["audit", "privacy", str(tmp_path / "suite")])
    assert res.exit_code == 2 and "suite directory" in res.output and "a, b" in res.output
    res = runner.invoke(app, ["audit", "privacy", str(tmp_path), "--attack", "bogus"])
    assert res.exit_code == 2 and "--attack must be one of" in res.output


@pytest.mark.slow
def test_audit_privacy_writes_json_figures_and_table(tmp_path: Path) -> None:
    run = _heart_run(tmp_path / "run", {"name": "dp_fedavg", "clip": 0.5, "noise_multiplier": 1})
    args = ["audit", "privacy", str(run), "--images", "2", "--iterations", "60"]
    res = CliRunner().invoke(
        app, [*args, "--shadows", "2", "--shadow-epochs", "1", "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    assert "gradient inversion" in res.output and "AUC" in res.output
    report = json.loads((run / "audit" / "privacy.json").read_text())
    inv, mem = report["inversion"], report["membership"]
    assert inv["images"] == 2 and inv["ssim_mean"] is None  # tabular rows: PSNR only
    assert "NOT noised" in inv["observed_update"]
    assert 0.0 <= mem["loss_threshold"]["auc"] <= 1.0
    assert mem["lira_offline"]["settings"]["shadows"] == 2
    assert (
        mem["loss_threshold"]["resolution_limited"] and "resolution_note" in mem["loss_threshold"]
    )
    assert (run / "audit" / "membership_roc.png").stat().st_size > 0
    res = CliRunner().invoke(app, ["audit", "privacy", str(run), "--site", "mars"])
    assert res.exit_code == 2 and "no site named 'mars'" in res.output


def test_inversion_attacks_the_runs_own_round_and_says_so(tmp_path: Path) -> None:
    run = _heart_run(tmp_path / "run")
    runner = CliRunner()
    res = runner.invoke(
        app, ["audit", "privacy", str(run), "--attack", "inversion", "--labels", "idlg"]
    )
    assert res.exit_code == 2 and "trained with batch size 8" in " ".join(res.output.split())
    assert not (run / "audit").exists()  # refused before anything was written
    args = ["--attack", "inversion", "--iterations", "5", "--no-progress"]
    res = runner.invoke(app, ["audit", "privacy", str(run), *args])
    assert res.exit_code == 0, res.output
    assert "batch 8, 5 step(s): the run's own batch size and local steps" in res.output
    assert "mean test row guess" in res.output and "image" not in res.output
    inv = json.loads((run / "audit" / "privacy.json").read_text())["inversion"]
    assert (inv["images"], inv["batch_size"], inv["local_steps"]) == (8, 8, 5)
    res = runner.invoke(app, ["audit", "privacy", str(run), *args, "--batch-size", "1"])
    assert "batch 1, 5 step(s): set by --batch-size, the rest from the run" in res.output


def test_the_report_says_what_the_coordinator_actually_sees() -> None:
    from medsilo.audit.privacy import observed_update_note
    from tests.audit.conftest import audit_config

    central = {"name": "dp_fedavg", "clip": 1.0, "noise_multiplier": 1.0}
    assert "NOT noised" in observed_update_note(audit_config(algorithm=central))
    local = observed_update_note(audit_config(algorithm={**central, "noise": "local"}))
    assert "noised by the site" in local and "NOT" not in local
    secure = observed_update_note(audit_config(secure_aggregation={"enabled": True}))
    assert "upper bound" in secure
