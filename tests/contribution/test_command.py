"""`medsilo contribution RUN` on a tiny heart-disease run directory, and the report section."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.experiment import run_experiment
from medsilo.report import build_report
from tests.conftest import small_config

runner = CliRunner()


@pytest.fixture
def heart_run(tmp_path: Path) -> Path:
    cfg = small_config(training={"rounds": 2, "local_steps": 5, "batch_size": 8, "lr": 0.1})
    return run_experiment(cfg, tmp_path / "run").run_dir


def test_cli_writes_scores_chart_and_report_section(heart_run: Path) -> None:
    result = runner.invoke(app, ["contribution", str(heart_run), "--no-progress"])
    assert result.exit_code == 0, result.output
    scores = json.loads((heart_run / "contribution.json").read_text())
    sites = ["cleveland", "hungarian", "switzerland", "va"]
    assert scores["sites"] == sites
    assert scores["reproduces_run"] is True  # the re-run is the recorded run
    assert set(scores["loo"]) == set(sites) and set(scores["shapley"]["values"]) == set(sites)
    for site, loo in scores["loo"].items():
        assert loo["score"] == pytest.approx(scores["full"] - loo["without"]), site
    assert scores["shapley"]["sum"] == pytest.approx(scores["shapley"]["round_gain_sum"])
    assert len(scores["shapley"]["rounds"]) == 2
    assert (heart_run / "contribution.png").stat().st_size > 0
    assert "cleveland" in result.output

    html = build_report(heart_run).read_text()
    assert 'id="contribution"' in html and "contribution.png" in html
    assert (heart_run / "report" / "contribution.png").exists()


def _save_final(run: Path, weights: list[np.ndarray]) -> None:
    np.savez(run / "final_weights.npz", *weights)


def _final(run: Path) -> list[np.ndarray]:
    with np.load(run / "final_weights.npz") as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


def test_cli_refuses_a_run_whose_model_was_swapped(heart_run: Path) -> None:
    # another architecture: a two-layer network's weights where the config builds a logistic
    _save_final(heart_run, [np.zeros((16, 30), np.float32), np.zeros(16, np.float32)] * 2)
    result = runner.invoke(app, ["contribution", str(heart_run), "--no-progress"])
    assert result.exit_code == 1
    assert "the run's model was swapped" in " ".join(result.output.split())
    assert not (heart_run / "contribution.json").exists()


def test_cli_refuses_weights_the_config_does_not_reproduce(heart_run: Path) -> None:
    # same shapes, other values: trained some other way, or replaced afterwards
    _save_final(heart_run, [w + np.float32(0.01) for w in _final(heart_run)])
    result = runner.invoke(
        app, ["contribution", str(heart_run), "--method", "shapley", "--no-progress"]
    )
    assert result.exit_code == 1
    assert "does not reproduce final_weights.npz" in " ".join(result.output.split())
    assert not (heart_run / "contribution.json").exists()


def test_report_without_scores_has_no_contribution_section(heart_run: Path) -> None:
    assert 'id="contribution"' not in build_report(heart_run).read_text()


def test_cli_loo_only_and_bad_inputs(heart_run: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["contribution", str(heart_run), "--method", "loo", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    scores = json.loads((heart_run / "contribution.json").read_text())
    assert "loo" in scores and "shapley" not in scores
    bad = runner.invoke(app, ["contribution", str(heart_run), "--method", "exact"])
    assert bad.exit_code != 0 and "--method" in bad.output
    missing = runner.invoke(app, ["contribution", str(tmp_path / "nothing")])
    assert missing.exit_code == 1 and "not a readable run directory" in missing.output
