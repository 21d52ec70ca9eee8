"""A deployed coordinator's run folder: never overwritten without --resume, resumed only from
an intact checkpoint of the same config and roster, with later round records dropped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medsilo.config import ConfigError, RunConfig
from medsilo.governance.checkpoint import (
    Checkpoint,
    CheckpointError,
    checkpoint_path,
    config_hash,
    save_checkpoint,
)
from medsilo.runtime.flower.deployed_server import (
    ROUNDS_FILE,
    DeployedRunConfig,
    prepare_run_dir,
    resumable_checkpoint,
)
from tests.conftest import small_config

SITES = ["cleveland", "hungarian", "va"]


def _checkpoint(cfg: RunConfig, rnd: int, sites: list[str] = SITES) -> Checkpoint:
    rng = np.random.default_rng(rnd)
    return Checkpoint(
        round=rnd,
        weights=[rng.normal(size=(13, 2)).astype(np.float32), np.zeros(2, np.float32)],
        server_state={},
        server_optimizer={},
        site_states={s: {"control": [rng.normal(size=3)]} for s in sites},
        sim_clock_s=float(rnd),
        contributed=list(sites),
        absent={},
        config_hash=config_hash(cfg),
        sites=list(sites),
    )


def _write_run(run_dir: Path, cfg: RunConfig, checkpoint_rounds: list[int]) -> None:
    for rnd in checkpoint_rounds:
        save_checkpoint(run_dir / "checkpoints", _checkpoint(cfg, rnd))


def _settings(run_dir: Path, resume: bool) -> DeployedRunConfig:
    return DeployedRunConfig(
        experiment=run_dir / "exp.yaml", kit=run_dir / "kit", run_dir=run_dir, resume=resume
    )


def test_fresh_folder_starts_at_round_one(tmp_path: Path) -> None:
    cfg = small_config()
    run_dir = tmp_path / "run"
    assert resumable_checkpoint(run_dir, cfg, SITES, resume=False) is None
    assert prepare_run_dir(_settings(run_dir, resume=False), cfg, SITES) is None
    assert (run_dir / "config.yaml").is_file()
    assert not (run_dir / ROUNDS_FILE).exists()


@pytest.mark.parametrize("holds", ["rounds", "checkpoint"])
def test_existing_run_is_refused_without_resume(tmp_path: Path, holds: str) -> None:
    cfg = small_config()
    if holds == "rounds":
        (tmp_path / ROUNDS_FILE).write_text('{"round": 1}\n')
    else:
        _write_run(tmp_path, cfg, [1])
    with pytest.raises(ConfigError, match="--resume") as err:
        resumable_checkpoint(tmp_path, cfg, SITES, resume=False)
    assert not isinstance(err.value, CheckpointError)


def test_resume_without_any_checkpoint_starts_fresh(tmp_path: Path) -> None:
    cfg = small_config()
    assert resumable_checkpoint(tmp_path, cfg, SITES, resume=True) is None
    assert prepare_run_dir(_settings(tmp_path, resume=True), cfg, SITES) is None


def test_resume_with_rounds_but_no_checkpoint_is_refused(tmp_path: Path) -> None:
    (tmp_path / ROUNDS_FILE).write_text('{"round": 1}\n')
    with pytest.raises(CheckpointError, match="no checkpoint"):
        resumable_checkpoint(tmp_path, small_config(), SITES, resume=True)


def test_resume_loads_the_newest_checkpoint(tmp_path: Path) -> None:
    cfg = small_config()
    _write_run(tmp_path, cfg, [1, 2, 3])
    ckpt = resumable_checkpoint(tmp_path, cfg, SITES, resume=True)
    assert ckpt is not None and ckpt.round == 3
    want = _checkpoint(cfg, 3)
    for got, expected in zip(ckpt.weights, want.weights, strict=True):
        assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_corrupted_checkpoint_is_refused(tmp_path: Path) -> None:
    cfg = small_config()
    _write_run(tmp_path, cfg, [1, 2])
    npz = checkpoint_path(tmp_path / "checkpoints", 2).with_suffix(".npz")
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted"):
        resumable_checkpoint(tmp_path, cfg, SITES, resume=True)


def test_checkpoint_of_another_config_is_refused(tmp_path: Path) -> None:
    training = {"rounds": 3, "local_steps": 10, "batch_size": 8}
    _write_run(tmp_path, small_config(training={**training, "lr": 0.2}), [1])
    with pytest.raises(CheckpointError, match="config hash mismatch"):
        resumable_checkpoint(
            tmp_path, small_config(training={**training, "lr": 0.1}), SITES, resume=True
        )
    # The run name is not part of the hash: renaming the experiment still resumes.
    cfg = small_config(training={**training, "lr": 0.2}, name="renamed")
    assert resumable_checkpoint(tmp_path, cfg, SITES, resume=True) is not None


def test_checkpoint_of_another_roster_is_refused(tmp_path: Path) -> None:
    cfg = small_config()
    _write_run(tmp_path, cfg, [1])
    with pytest.raises(CheckpointError, match="roster"):
        resumable_checkpoint(tmp_path, cfg, ["cleveland", "va", "hungarian"], resume=True)


def test_resume_keeps_only_records_up_to_the_checkpoint(tmp_path: Path) -> None:
    cfg = small_config()
    _write_run(tmp_path, cfg, [1, 2])
    records = [{"round": r, "test": {"accuracy": r / 10}} for r in (1, 2, 3)]
    text = "".join(json.dumps(r) + "\n" for r in records)
    (tmp_path / ROUNDS_FILE).write_text(text + '{"round": 4, "te')  # torn by a crash
    ckpt = prepare_run_dir(_settings(tmp_path, resume=True), cfg, SITES)
    assert ckpt is not None and ckpt.round == 2
    kept = (tmp_path / ROUNDS_FILE).read_text()
    assert kept.endswith("\n")
    assert [json.loads(line) for line in kept.splitlines()] == records[:2]
    assert not list(tmp_path.glob(f".{ROUNDS_FILE}*"))  # no temporary file left


def test_run_config_round_trips_through_flower_run_config(tmp_path: Path) -> None:
    settings = DeployedRunConfig(
        experiment=tmp_path / "exp.yaml",
        kit=tmp_path / "kit",
        run_dir=tmp_path / "run",
        resume=True,
        round_timeout_s=12.5,
        connect_timeout_s=7.0,
        poll_interval_s=0.05,
        min_sites=2,
    )
    assert DeployedRunConfig.from_context(settings.as_run_config()) == settings
    with pytest.raises(ConfigError, match="run-dir"):
        DeployedRunConfig.from_context({"experiment": "e.yaml", "kit": "k"})
