"""The command line as a user drives it."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from medsilo.cli import app

runner = CliRunner()

SMALL = """
name: tiny
data: {dataset: heart_disease}
algorithm: {name: fedprox, mu: 0.01}
training: {rounds: 2, local_steps: 5, batch_size: 4, lr: 0.01}
"""


def test_simulate_writes_runs_table_and_report(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(SMALL)
    out = tmp_path / "suite"
    result = runner.invoke(
        app, ["simulate", str(cfg), "--seeds", "0-1", "--out", str(out), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "tiny" in result.output and "cleveland" in result.output
    assert "uplink kB/round" in result.output and "leakage R" in result.output
    assert (out / "tiny-s0" / "summary.json").is_file()
    assert (out / "tiny-s1" / "summary.json").is_file()
    html = (out / "report" / "report.html").read_text()
    # A title naming what was compared; one row for the config (mean ± std over the two
    # seeds, as the terminal table shows), the seeds folded underneath.
    assert "<title>tiny on heart_disease (seeds 0, 1)</title>" in html
    assert '<details class="seeds"><summary>tiny: 2 seeds</summary>' in html
    assert "tiny-s0" in html and "tiny-s1" in html
    assert " ± " in html


def test_bad_config_fails_before_training_naming_the_field(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(SMALL.replace("local_steps: 5", "local_step: 5"))
    result = runner.invoke(app, ["simulate", str(cfg), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "training.local_step" in result.output
    assert not (tmp_path / "o").exists()


def test_report_command_on_missing_dir(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path / "nothing")])
    assert result.exit_code == 2


def test_configs_lists_bundled() -> None:
    result = runner.invoke(app, ["configs"])
    assert result.exit_code == 0 and "heart_fedavg" in result.output


def test_an_error_quoting_brackets_shows_them(tmp_path: Path) -> None:
    """Rich markup must not swallow a user's ``[...]`` in an error message."""
    out = tmp_path / "never"
    args = ["simulate", "heart_fedavg", "--set", "evaluation.metrics=[auroc, nope]"]
    res = runner.invoke(app, [*args, "--out", str(out), "--no-progress"])
    assert res.exit_code == 2
    assert "[auroc, nope]" in " ".join(res.output.split())
    assert not out.exists()
