"""A deployed site's per-round algorithm state on disk: what a resume after round R gets
back is exactly the newest state of a round <= R, and later rounds are forgotten."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsilo.runtime.flower.site_state import (
    prune_round_states,
    restore_round_state,
    save_round_state,
)
from medsilo.types import Weights


def _state(seed: int) -> dict[str, Weights]:
    rng = np.random.default_rng(seed)
    return {
        "control": [rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=4)],
        "personal/model": [
            rng.integers(0, 9, size=(2, 2)).astype(np.float64),
            rng.normal(size=()).astype(np.float16),
            np.zeros(0, dtype=np.float32),
        ],
        "residual": [rng.normal(size=7).astype(np.float32)],
    }


def _assert_same(got: dict[str, Weights], want: dict[str, Weights]) -> None:
    assert sorted(got) == sorted(want)
    for name, arrays in want.items():
        assert len(got[name]) == len(arrays), name
        for g, w in zip(got[name], arrays, strict=True):
            assert g.dtype == w.dtype and g.shape == w.shape, name
            assert np.array_equal(g, w), name


def _rounds(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_restores_the_newest_round_not_after_resume_round(tmp_path: Path) -> None:
    states = {rnd: _state(rnd) for rnd in (1, 2, 4, 6)}
    for rnd, state in states.items():
        save_round_state(tmp_path, rnd, state)
    # Resume after round 5: round 4 is the newest covered; round 6 must go.
    rnd, state = restore_round_state(tmp_path, 5)
    assert rnd == 4
    _assert_same(state, states[4])
    assert _rounds(tmp_path) == ["round-0001.npz", "round-0002.npz", "round-0004.npz"]
    # An exact match is taken, and nothing earlier is deleted.
    rnd, state = restore_round_state(tmp_path, 2)
    assert rnd == 2
    _assert_same(state, states[2])
    assert _rounds(tmp_path) == ["round-0001.npz", "round-0002.npz"]


def test_no_round_at_or_before_resume_round_gives_nothing(tmp_path: Path) -> None:
    save_round_state(tmp_path, 3, _state(3))
    save_round_state(tmp_path, 4, _state(4))
    assert restore_round_state(tmp_path, 2) == (0, {})
    assert _rounds(tmp_path) == []
    # A fresh run (resume_round 0) on a folder that does not exist yet.
    assert restore_round_state(tmp_path / "never-written", 0) == (0, {})


def test_empty_state_round_trips(tmp_path: Path) -> None:
    save_round_state(tmp_path, 1, {})
    assert restore_round_state(tmp_path, 1) == (1, {})


def test_save_overwrites_a_round_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "run"
    path = save_round_state(directory, 2, _state(0))
    assert path == directory / "round-0002.npz"
    save_round_state(directory, 2, _state(1))
    assert _rounds(directory) == ["round-0002.npz"]  # no .round-*.npz left behind
    _assert_same(restore_round_state(directory, 9)[1], _state(1))


def test_a_site_prunes_round_files_to_the_newest_and_those_a_resume_can_need(
    tmp_path: Path,
) -> None:
    for rnd in (1, 2, 3, 5, 6):  # a site not sampled in round 4
        save_round_state(tmp_path, rnd, {"residual": [np.full(2, float(rnd))]})
    # resumes may start after round 4 (the site's file of round 3) or 5
    assert prune_round_states(tmp_path, [4, 5]) == [1, 2]
    assert sorted(p.name for p in tmp_path.glob("round-*.npz")) == [
        "round-0003.npz",
        "round-0005.npz",
        "round-0006.npz",
    ]
    assert prune_round_states(tmp_path, []) == [3, 5]  # nothing but the newest
    assert restore_round_state(tmp_path, 6)[0] == 6
