"""`medsilo contribution` on a heart-disease run with a free rider: flags, shares, ledger,
report; and detection refused under secure aggregation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.contribution.free_rider_ledger import FREE_RIDER_KIND
from medsilo.experiment import run_experiment
from medsilo.ledger.keys import load_public_key
from medsilo.ledger.store import open_readonly, read_records
from medsilo.ledger.verify import verify_ledger
from medsilo.report import build_report
from tests.conftest import small_config
from tests.contribution.heart_free_riders import BEHAVIOURS, heart_config

runner = CliRunner()


@pytest.fixture
def free_rider_run(tmp_path: Path) -> Path:
    cfg = heart_config(0, BEHAVIOURS["returns_received_model"][0])
    return run_experiment(cfg, tmp_path / "run").run_dir


def _free_rider_records(run: Path) -> list[dict[str, object]]:
    conn = open_readonly(run / "ledger.sqlite")
    try:
        return [json.loads(r.payload) for r in read_records(conn) if r.kind == FREE_RIDER_KIND]
    finally:
        conn.close()


def test_free_rider_gets_zero_share_and_a_signed_ledger_record(free_rider_run: Path) -> None:
    args = ["contribution", str(free_rider_run), "--method", "shapley", "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    scores = json.loads((free_rider_run / "contribution.json").read_text())
    (flag,) = scores["free_riders"]["flags"]
    assert (flag["site"], flag["rule"], flag["rounds"]) == (
        "va",
        "returns_received_model",
        [1, 2, 3, 4, 5],
    )
    shares = scores["shares"]
    assert shares["from"] == "shapley" and shares["zeroed_free_riders"] == ["va"]
    assert shares["values"]["va"] == 0.0
    assert sum(shares["values"].values()) == pytest.approx(1.0)
    assert "free rider: va (returns_received_model" in " ".join(result.output.split())

    records = _free_rider_records(free_rider_run)
    assert records == [{"run": scores["run"], **flag}]
    key = load_public_key(free_rider_run / "ledger.pub")
    assert verify_ledger(free_rider_run / "ledger.sqlite", key).ok
    again = runner.invoke(app, args)  # scoring the run again records nothing twice
    assert again.exit_code == 0 and len(_free_rider_records(free_rider_run)) == 1

    html = build_report(free_rider_run).read_text()
    assert 'id="free-riders"' in html and "free rider: va (returns_received_model" in html
    assert "Reward share (from shapley)" in html


def test_a_ledger_of_another_coordinator_is_refused_before_scoring(
    free_rider_run: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MEDSILO_COORDINATOR_KEY", str(tmp_path / "other.key"))
    result = runner.invoke(app, ["contribution", str(free_rider_run), "--no-progress"])
    assert result.exit_code == 1
    assert "was started with another coordinator key" in " ".join(result.output.split())
    assert not (free_rider_run / "contribution.json").exists()


def test_detection_is_skipped_under_secure_aggregation(tmp_path: Path) -> None:
    cfg = small_config(
        secure_aggregation={"enabled": True},
        training={"rounds": 2, "local_steps": 5, "batch_size": 8, "lr": 0.1},
    )
    run = run_experiment(cfg, tmp_path / "run").run_dir
    result = runner.invoke(app, ["contribution", str(run), "--method", "loo", "--no-progress"])
    assert result.exit_code == 0, result.output
    scores = json.loads((run / "contribution.json").read_text())
    assert "secure aggregation hides the individual updates" in scores["free_riders"]["skipped"]
    assert scores["shares"]["from"] == "loo"
    assert "free-rider detection skipped" in " ".join(result.output.split())
