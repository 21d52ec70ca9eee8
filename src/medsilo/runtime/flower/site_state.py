"""Where a ClientApp keeps its site's algorithm state between rounds.

A site's algorithm state (SCAFFOLD's control variate, Ditto's personal model, FedBN's norm
layers, the error-feedback residual of top-k compression) must outlive the process that
made it. Two stores:

* :class:`ContextState`: Flower's ``context.state``. The simulation uses it: Flower stores
  a simulated node's context before the next message is served.
* :class:`RoundFiles`: one ``round-XXXX.npz`` per trained round in the site's own folder. A
  deployed site uses it. A deployed ClientApp replies *before* Flower stores its
  ``context.state``, so a large state (a 100M-parameter residual is 400 MB) could still be
  in flight when the next message arrives; and a resumed coordinator needs the site's state
  of an earlier round anyway. The file is written (temporary name, then rename) before the
  reply leaves, so the next message always finds it; ``context.state`` then holds no copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from flwr.app import Context

from medsilo.governance.config import CheckpointConfig
from medsilo.runtime.flower import records as rec
from medsilo.types import Weights


class SiteStateStore(Protocol):
    """Loads the site's newest algorithm state and keeps the state a round has made."""

    def load(self, context: Context) -> dict[str, Weights]: ...

    def store(self, context: Context, rnd: int, state: dict[str, Weights]) -> None: ...


@dataclass(frozen=True)
class ContextState:
    """The state lives in ``context.state`` under :data:`records.CONTEXT_STATE_PREFIX`."""

    def load(self, context: Context) -> dict[str, Weights]:
        return rec.load_state(context.state, rec.CONTEXT_STATE_PREFIX)

    def store(self, context: Context, rnd: int, state: dict[str, Weights]) -> None:
        rec.store_state(context.state, state, rec.CONTEXT_STATE_PREFIX)


@dataclass(frozen=True)
class RoundFiles:
    """The state lives in ``directory/round-XXXX.npz``; the newest round is the current one.

    After each save the files no resume can need are deleted: a resume continues from the
    newest file at or before one of the coordinator's checkpoints (``checkpoints``, the
    coordinator's settings, of a ``last_round``-round run), so only those files and the
    newest are kept. ``checkpoints=None`` keeps every file."""

    directory: Path
    checkpoints: CheckpointConfig | None = None
    last_round: int = 0

    def load(self, context: Context) -> dict[str, Weights]:
        rounds = _saved_rounds(self.directory)
        return _read(self.directory, rounds[-1]) if rounds else {}

    def store(self, context: Context, rnd: int, state: dict[str, Weights]) -> None:
        save_round_state(self.directory, rnd, state)
        if self.checkpoints is not None:
            prune_round_states(self.directory, self.checkpoints.possibly_held(rnd, self.last_round))


def prune_round_states(directory: Path, resume_points: list[int]) -> list[int]:
    """Delete every round file except the newest and, for each round a resume can start
    after (``resume_points``), the newest file at or before it; returns the deleted rounds.
    A 100M-parameter site's state is 400 MB a round, so keeping all of them fills a disk."""
    rounds = _saved_rounds(directory)
    if not rounds:
        return []
    needed = {rounds[-1]}
    for point in resume_points:
        before = [r for r in rounds if r <= point]
        if before:  # none: a resume there starts the site from no state
            needed.add(before[-1])
    deleted = [r for r in rounds if r not in needed]
    for r in deleted:
        (directory / f"round-{r:04d}.npz").unlink()
    return deleted


def save_round_state(directory: Path, rnd: int, state: dict[str, Weights]) -> Path:
    """Write ``state`` as ``round-XXXX.npz`` (temporary name, then rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {f"{name}/{i}": np.asarray(a) for name, ws in state.items() for i, a in enumerate(ws)}
    path = directory / f"round-{rnd:04d}.npz"
    tmp = directory / f".round-{rnd:04d}.{os.getpid()}.npz"
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, path)
    return path


def restore_round_state(directory: Path, resume_round: int) -> tuple[int, dict[str, Weights]]:
    """The newest saved state of a round <= ``resume_round`` (``(0, {})`` if none); later
    rounds, which the coordinator's checkpoint does not cover, are deleted."""
    rounds = _saved_rounds(directory)
    for later in [r for r in rounds if r > resume_round]:
        (directory / f"round-{later:04d}.npz").unlink()
    kept = [r for r in rounds if r <= resume_round]
    if not kept:
        return 0, {}
    return kept[-1], _read(directory, kept[-1])


def _saved_rounds(directory: Path) -> list[int]:
    return sorted(int(p.stem.split("-")[1]) for p in directory.glob("round-*.npz"))


def _read(directory: Path, rnd: int) -> dict[str, Weights]:
    with np.load(directory / f"round-{rnd:04d}.npz") as npz:
        named: dict[str, dict[int, np.ndarray]] = {}
        for key in npz.files:
            name, index = key.rsplit("/", 1)
            named.setdefault(name, {})[int(index)] = npz[key]
    return {n: [v[i] for i in sorted(v)] for n, v in named.items()}
