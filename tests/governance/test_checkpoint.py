"""Checkpoints: resuming after an interruption gives the uninterrupted run, bit for bit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medsilo.config import ConfigError, RunConfig
from medsilo.data.base import FederatedData
from medsilo.governance.checkpoint import (
    CheckpointError,
    CheckpointWriter,
    checkpoint_path,
    checkpoint_rounds,
    load_checkpoint,
)
from medsilo.governance.config import CheckpointConfig
from medsilo.runtime.simulation import run_federation
from tests.conftest import small_config

ROUNDS = {"rounds": 4, "local_steps": 5, "batch_size": 8, "lr": 0.1}


def stateful_config(rounds: int = 4, **extra: object) -> RunConfig:
    """SCAFFOLD (server and per-site control variates) with Adam on the server (moments)."""
    return small_config(
        algorithm={"name": "scaffold"},
        server_optimizer={"name": "adam", "lr": 0.05},
        training={**ROUNDS, "rounds": rounds, "fraction": 0.67},
        **extra,
    )


class Crash(Exception):
    pass


def crash_after(rnd: int) -> Callable[[dict[str, Any]], None]:
    def on_round(record: dict[str, Any]) -> None:
        if record["round"] == rnd:
            raise Crash

    return on_round


def test_resume_after_a_crash_equals_the_uninterrupted_run(
    tmp_path: Path, fed: FederatedData
) -> None:
    cfg = stateful_config()
    straight = run_federation(cfg, fed)
    writer = CheckpointWriter(tmp_path, cfg, CheckpointConfig(every=1))
    with pytest.raises(Crash):  # round 3's record never became durable: no checkpoint 3
        run_federation(cfg, fed, on_round=crash_after(3), checkpoints=writer)
    assert checkpoint_rounds(tmp_path) == [1, 2]
    resumed = run_federation(cfg, fed, resume=load_checkpoint(checkpoint_path(tmp_path, 2)))
    assert [r["round"] for r in resumed.rounds] == [3, 4]
    for a, b in zip(straight.weights, resumed.weights, strict=True):
        assert np.array_equal(a, b)
    assert [r["train_loss"] for r in resumed.rounds] == [
        r["train_loss"] for r in straight.rounds[2:]
    ]
    for site, state in straight.site_states.items():  # SCAFFOLD's site control variates
        for key, arrays in state.items():
            for a, b in zip(arrays, resumed.site_states[site][key], strict=True):
                assert np.array_equal(a, b)


def test_a_round_is_recorded_before_its_checkpoint(tmp_path: Path, fed: FederatedData) -> None:
    """A crash between the two must never leave a checkpoint whose round has no record
    (resuming from it would leave a permanent gap in rounds.jsonl and the ledger)."""
    cfg = stateful_config()
    writer = CheckpointWriter(tmp_path, cfg, CheckpointConfig(every=1))
    seen: list[tuple[int, list[int]]] = []
    run_federation(
        cfg,
        fed,
        on_round=lambda r: seen.append((r["round"], checkpoint_rounds(tmp_path))),
        checkpoints=writer,
    )
    assert seen == [(1, []), (2, [1]), (3, [1, 2]), (4, [1, 2, 3])]


def test_keep_prunes_all_but_the_newest(tmp_path: Path, fed: FederatedData) -> None:
    cfg = stateful_config()
    run_federation(cfg, fed, checkpoints=CheckpointWriter(tmp_path, cfg, CheckpointConfig(keep=2)))
    assert checkpoint_rounds(tmp_path) == [3, 4]
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["round-0003.npz", "round-0004.npz"]


@pytest.fixture
def saved(tmp_path: Path, fed: FederatedData) -> Path:
    cfg = stateful_config(rounds=2)
    run_federation(cfg, fed, checkpoints=CheckpointWriter(tmp_path, cfg, CheckpointConfig()))
    return checkpoint_path(tmp_path, 1)


def test_a_corrupted_checkpoint_is_refused(saved: Path) -> None:
    npz = saved.with_suffix(".npz")
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(saved)


def test_missing_arrays_are_refused(saved: Path) -> None:
    saved.with_suffix(".npz").unlink()
    with pytest.raises(CheckpointError, match="arrays missing"):
        load_checkpoint(saved)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(saved.with_name("round-0009.json"))


def test_a_foreign_checkpoint_is_refused(saved: Path, fed: FederatedData) -> None:
    other = stateful_config(rounds=2, seed=1)
    with pytest.raises(CheckpointError, match="another configuration"):
        run_federation(other, fed, resume=load_checkpoint(saved))


def test_withdrawing_a_site_that_already_contributed_is_refused(
    saved: Path, fed: FederatedData
) -> None:
    ckpt = load_checkpoint(saved)
    site = ckpt.contributed[0]
    cfg = stateful_config(rounds=2, governance={"withdrawn_sites": [site]})
    with pytest.raises(CheckpointError, match="contributed by round 1"):
        run_federation(cfg, fed, resume=ckpt)


def test_asynchronous_runs_refuse_checkpoints(fed: FederatedData) -> None:
    cfg = small_config(
        asynchrony={"mode": "fedbuff", "buffer_size": 2},
        governance={"checkpoint": {"every": 1}},
    )
    with pytest.raises(ConfigError, match="synchronous engine only"):
        run_federation(cfg, fed)


def test_a_save_removes_what_interrupted_saves_and_prunes_left(
    tmp_path: Path, fed: FederatedData
) -> None:
    cfg = stateful_config(rounds=2)
    # What a crash can leave: a temporary file of a save that never got renamed, the
    # arrays of a save that died before its manifest, those of a prune that died after
    # deleting the manifest.
    leftovers = [
        tmp_path / ".round-0001.npz.tmp",
        tmp_path / ".round-0001.json.tmp",
        tmp_path / "round-0007.npz",
        tmp_path / "round-0000.npz",
    ]
    for path in leftovers:
        path.write_bytes(b"partial")
    run_federation(cfg, fed, checkpoints=CheckpointWriter(tmp_path, cfg, CheckpointConfig(keep=1)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["round-0002.json", "round-0002.npz"]
    assert load_checkpoint(checkpoint_path(tmp_path, 2)).round == 2


@pytest.mark.parametrize(
    ("every", "keep", "rnd", "held"),
    [
        (1, "all", 3, [1, 2, 3]),
        (1, 3, 6, [3, 4, 5, 6]),  # 3 kept before round 6 is saved, then 4, 5, 6
        (2, 1, 5, [2, 4]),
        (2, 1, 7, [6, 7]),  # 7 is the last round: always checkpointed
        (5, 2, 3, []),  # nothing saved yet
    ],
)
def test_the_checkpoints_a_coordinator_may_hold_during_a_round(
    every: int, keep: int | str, rnd: int, held: list[int]
) -> None:
    settings = CheckpointConfig.model_validate({"every": every, "keep": keep})
    assert settings.possibly_held(rnd, last_round=7) == held
