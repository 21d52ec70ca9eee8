"""Run directories: what they contain, and that nothing is lost when a run dies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.experiment import RunDirError, leave_one_hospital_out, run_experiment
from medsilo.ledger.keys import load_public_key
from medsilo.ledger.verify import verify_ledger

from .conftest import small_config, synthetic_federation


def test_run_directory_contents(tmp_path: Path) -> None:
    cfg = small_config(training={"rounds": 3, "local_steps": 5, "batch_size": 8, "lr": 0.01})
    res = run_experiment(cfg, tmp_path / "run")
    run = tmp_path / "run"
    assert (run / "config.yaml").read_text().startswith("name: t")
    lines = (run / "rounds.jsonl").read_text().splitlines()
    assert [json.loads(x)["round"] for x in lines] == [1, 2, 3]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["sites"] == ["cleveland", "hungarian", "switzerland", "va"]
    assert summary["final"]["mean_site_accuracy"] == res.result.rounds[-1]["mean_site_accuracy"]
    saved = np.load(run / "final_weights.npz")
    np.testing.assert_array_equal(saved["arr_0"], res.result.weights[0])


def test_existing_run_directory_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    with pytest.raises(RunDirError, match="already exists"):
        run_experiment(small_config(), tmp_path / "run")
    assert list((tmp_path / "run").iterdir()) == []


def test_completed_rounds_survive_a_crash(tmp_path: Path) -> None:
    def boom(rec: dict) -> None:
        if rec["round"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(small_config(), tmp_path / "run", on_round=boom)
    lines = (tmp_path / "run" / "rounds.jsonl").read_text().splitlines()
    assert [json.loads(x)["round"] for x in lines] == [1, 2]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["complete"] is False and summary["rounds_completed"] == 2
    assert summary["incomplete_reason"] == "stopped during training (KeyboardInterrupt)"


def test_leave_one_hospital_out_tests_each_unseen_site() -> None:
    fed = synthetic_federation(num_sites=3)
    seen: list[str] = []
    loho = leave_one_hospital_out(small_config(), fed, seen.append)
    assert seen == ["h0", "h1", "h2"] and set(loho) == set(seen)
    for name, metrics in loho.items():
        site = fed.site(name)
        assert metrics["n"] == len(site.train) + len(site.test)
        assert 0.0 <= metrics["accuracy"] <= 1.0
    with pytest.raises(ValueError, match="shared model"):
        leave_one_hospital_out(small_config(algorithm={"name": "local"}), fed)


def test_loho_in_summary(tmp_path: Path) -> None:
    cfg = small_config(evaluation={"loho": True})
    res = run_experiment(cfg, tmp_path / "run")
    assert set(res.summary["loho"]) == {"cleveland", "hungarian", "switzerland", "va"}
    assert 0 < res.summary["loho_mean_accuracy"] <= 1


def test_run_interrupted_in_leave_one_hospital_out_is_reported(tmp_path: Path) -> None:
    def stop_after_first(site: str) -> None:
        raise KeyboardInterrupt

    cfg = small_config(evaluation={"loho": True}, training={**SHORT, "rounds": 2})
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, tmp_path / "run", on_loho_site=stop_after_first)
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] is False
    assert summary["incomplete_reason"].startswith("stopped during leave-one-hospital-out")
    assert list(summary["loho"]) == ["cleveland"]  # the site finished before the stop
    assert summary["rounds_completed"] == 2 and summary["final"]["test"] is not None
    assert (run / "final_weights.npz").is_file()
    # every round trained, so the ledger's run is closed and verifies
    assert verify_ledger(run / "ledger.sqlite", load_public_key(run / "ledger.pub")).ok
    res = CliRunner().invoke(app, ["report", str(run)])
    assert res.exit_code == 0, res.output
    assert (run / "report" / "report.html").is_file()


SHORT = {"rounds": 3, "local_steps": 3, "batch_size": 8, "lr": 0.1}
#: Three of four sites send an update scaled past float32's range: rejected as non-finite.
FLOODING = {"kind": "scale", "sites": ["cleveland", "hungarian", "switzerland"], "scale": 1e40}


def test_rejected_updates_are_counted_and_fail_the_run(tmp_path: Path) -> None:
    summary = run_experiment(small_config(training=SHORT, attack=FLOODING), tmp_path / "a").summary
    assert summary["updates_sent"] == 12 and summary["updates_rejected"] == 9
    assert summary["rejected_fraction"] == 0.75
    assert summary["failed"] is True and "9 of 12 updates" in summary["failure_reason"]
    tolerant = small_config(training={**SHORT, "max_rejected_fraction": 0.8}, attack=FLOODING)
    summary = run_experiment(tolerant, tmp_path / "b").summary
    assert summary["updates_rejected"] == 9 and summary["failed"] is False
    clean = run_experiment(small_config(training=SHORT), tmp_path / "c").summary
    assert clean["updates_rejected"] == 0 and clean["failed"] is False


def test_leave_one_hospital_out_of_an_attacking_site_trains_without_its_attack(
    tmp_path: Path,
) -> None:
    attack = {"kind": "sign_flip", "sites": ["cleveland"]}
    cfg = small_config(evaluation={"loho": True}, training=SHORT, attack=attack)
    summary = run_experiment(cfg, tmp_path / "run").summary
    assert set(summary["loho"]) == {"cleveland", "hungarian", "switzerland", "va"}
