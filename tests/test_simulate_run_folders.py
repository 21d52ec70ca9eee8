"""``medsilo simulate``: mistakes are refused before anything is written, suites keep every
run, failed runs exit non-zero, and configs can be printed and overridden (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

import medsilo.suite
from medsilo.bundled import bundled_text
from medsilo.cli import app
from medsilo.config import RunConfig
from medsilo.experiment import ExperimentResult, run_experiment
from medsilo.suite import run_suite

from .conftest import small_config

runner = CliRunner()
TINY = {
    "name": "tiny",
    "data": {"dataset": "heart_disease", "partition": "natural"},
    "model": {"name": "logistic"},
    "training": {"rounds": 2, "local_steps": 2, "batch_size": 8, "lr": 0.1},
}


def _config(tmp_path: Path, file: str = "cfg.yaml", **changes: Any) -> Path:
    path = tmp_path / file
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return path


def _simulate(*args: str) -> Result:
    return runner.invoke(app, ["simulate", *args, "--no-progress"])


def _refused(res: Result) -> str:
    """The message of a clean refusal: exit 2 and no traceback."""
    assert res.exit_code == 2, res.output
    assert isinstance(res.exception, SystemExit) and "Traceback" not in res.output
    return " ".join(res.output.split())


DP = {"name": "dp_fedavg", "clip": 1.0, "noise_multiplier": 0.5, "noise": "central"}
CONFIG_MISTAKES = {
    "model": ({"model": {"name": "cnn"}}, "needs square image inputs"),
    "attack_site": (
        {"attack": {"kind": "sign_flip", "sites": ["nowhere"]}},
        "unknown site(s) ['nowhere']",
    ),
    "krum": ({"robust": {"rule": "krum", "f": 1}}, "needs at least 5 updates a round"),
    "sites": (
        {"data": {"dataset": "heart_disease", "partition": "iid", "num_sites": 1000}},
        "more sites than samples",
    ),
    "backdoor": (
        {"attack": {"kind": "backdoor", "sites": ["va"], "target": 7, "trigger_size": 2}},
        "attack.target 7 is not a class",
    ),
    "budget": (
        {"algorithm": DP, "privacy": {"delta": 1e-5, "target_epsilon": 0.01}},
        "one round already costs epsilon",
    ),
    "loho_one_site": (  # trains, then could not leave its only hospital out
        {
            "data": {"dataset": "heart_disease", "hospitals": ["va"]},
            "evaluation": {"loho": True},
        },
        "leave-one-hospital-out needs at least two sites",
    ),
}


@pytest.mark.parametrize("case", sorted(CONFIG_MISTAKES))
def test_config_mistakes_are_refused_before_anything_is_written(tmp_path: Path, case: str) -> None:
    changes, message = CONFIG_MISTAKES[case]
    out = tmp_path / "out"
    res = _simulate(str(_config(tmp_path, **changes)), "--out", str(out))
    assert message in _refused(res)
    assert not out.exists()


def test_a_refusal_at_the_runs_start_leaves_no_suite_folder(tmp_path: Path) -> None:
    """Refusals that need the run's start (here: the anchoring node does not answer) come
    after the suite folder was made; the folder this command made is removed again."""
    out = tmp_path / "out"
    cfg = _config(tmp_path, anchor={"rpc": "http://127.0.0.1:9"})
    assert "no Ethereum JSON-RPC node answers" in _refused(_simulate(str(cfg), "--out", str(out)))
    assert not out.exists()


@pytest.mark.parametrize("seeds", ["0-x", "3-1", "-1", "a", ","])
def test_malformed_seeds_are_refused(tmp_path: Path, seeds: str) -> None:
    out = tmp_path / "out"
    res = _simulate(str(_config(tmp_path)), "--seeds", seeds, "--out", str(out))
    assert "--seeds" in _refused(res) and not out.exists()


def test_a_repeated_config_name_is_refused(tmp_path: Path) -> None:
    cfg = str(_config(tmp_path))
    out = tmp_path / "out"
    assert "tiny given more than once" in _refused(_simulate(cfg, cfg, "--out", str(out)))
    assert "seed(s) [1] given more than once" in _refused(
        _simulate(cfg, "--seeds", "0,1,1", "--out", str(out))
    )
    assert not out.exists()


def test_reusing_out_refuses_a_taken_name_and_keeps_earlier_runs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cfg = str(_config(tmp_path))
    assert _simulate(cfg, "--out", str(out)).exit_code == 0
    first = (out / "tiny" / "summary.json").read_text()
    assert "already holds run(s) tiny" in _refused(_simulate(cfg, "--out", str(out)))
    assert (out / "tiny" / "summary.json").read_text() == first
    other = str(_config(tmp_path, "other.yaml", name="other"))
    assert _simulate(other, "--out", str(out)).exit_code == 0
    assert json.loads((out / "suite.json").read_text())["runs"] == ["tiny", "other"]
    assert [row["name"] for row in json.loads((out / "table.json").read_text())] == [
        "tiny",
        "other",
    ]
    run = out / "tiny"
    assert "run directory, not a suite" in _refused(_simulate(other, "--out", str(run)))
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    assert "not a medsilo suite" in _refused(_simulate(other, "--out", str(stranger)))


#: Three of four sites send updates scaled past float32's range: rejected as non-finite.
FLOODING = "attack={kind: scale, sites: [cleveland, hungarian, switzerland], scale: 1.0e+40}"


def test_a_run_with_mostly_rejected_updates_fails_loudly(tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = _simulate(str(_config(tmp_path)), "--out", str(out), "--set", FLOODING)
    assert res.exit_code == 1, res.output
    assert "tiny FAILED x1" in res.output
    assert "run tiny failed: 6 of 8 updates were rejected (75%)" in " ".join(res.output.split())
    summary = json.loads((out / "tiny" / "summary.json").read_text())
    assert summary["failed"] is True and summary["rejected_fraction"] == 0.75
    assert json.loads((out / "table.json").read_text())[0]["failures"] == {
        "tiny": summary["failure_reason"]
    }
    tolerated = tmp_path / "tolerated"
    args = ["--set", FLOODING, "--set", "training.max_rejected_fraction=0.8"]
    assert _simulate(str(_config(tmp_path)), "--out", str(tolerated), *args).exit_code == 0


def test_configs_show_prints_a_bundled_config(tmp_path: Path) -> None:
    listed = runner.invoke(app, ["configs"])
    assert listed.exit_code == 0 and "heart_fedavg" in listed.output.split()
    shown = runner.invoke(app, ["configs", "show", "heart_fedavg"])
    assert shown.exit_code == 0 and shown.output == bundled_text("heart_fedavg")
    assert "no bundled config 'nope'" in _refused(runner.invoke(app, ["configs", "show", "nope"]))


def test_overrides_apply_before_validation_and_are_recorded(tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = _simulate(
        "heart_fedavg",
        "--out",
        str(out),
        "--rounds",
        "1",
        "--set",
        "training.local_steps=2",
        "--set",
        "evaluation.loho=false",
    )
    assert res.exit_code == 0, res.output
    recorded = yaml.safe_load((out / "heart-fedavg" / "config.yaml").read_text())
    assert recorded["training"]["rounds"] == 1 and recorded["training"]["local_steps"] == 2
    assert len((out / "heart-fedavg" / "rounds.jsonl").read_text().splitlines()) == 1
    bad = tmp_path / "bad"
    message = _refused(_simulate("heart_fedavg", "--out", str(bad), "--rounds", "0"))
    assert "training.rounds" in message and "with training.rounds=0" in message
    assert "is not KEY=VALUE" in _refused(_simulate("heart_fedavg", "--set", "rounds"))
    assert not bad.exists()


def test_an_interrupted_suite_keeps_every_run_in_its_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = {"rounds": 2, "local_steps": 2, "batch_size": 8, "lr": 0.1}
    suite = tmp_path / "suite"
    run_suite([small_config(name="a", training=train)], [0], suite, "first")

    def interrupted(cfg: RunConfig, run_dir: Path, **kwargs: Any) -> ExperimentResult:
        def stop(rec: dict[str, Any]) -> None:
            raise KeyboardInterrupt

        return run_experiment(cfg, run_dir, on_round=stop)

    monkeypatch.setattr(medsilo.suite, "run_experiment", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_suite([small_config(name="b", training=train)], [0], suite, "second")
    assert json.loads((suite / "suite.json").read_text()) == {
        "title": "first; second",
        "runs": ["a", "b"],
    }
    assert json.loads((suite / "b" / "summary.json").read_text())["complete"] is False
