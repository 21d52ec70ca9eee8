"""Run directories: what they contain, and that nothing is lost when a run dies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medsilo.experiment import leave_one_hospital_out, run_experiment

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
    with pytest.raises(FileExistsError):
        run_experiment(small_config(), tmp_path / "run")


def test_completed_rounds_survive_a_crash(tmp_path: Path) -> None:
    def boom(rec: dict) -> None:
        if rec["round"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(small_config(), tmp_path / "run", on_round=boom)
    lines = (tmp_path / "run" / "rounds.jsonl").read_text().splitlines()
    assert [json.loads(x)["round"] for x in lines] == [1, 2]


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
