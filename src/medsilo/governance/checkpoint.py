"""Per-round checkpoints of the engine state: plain arrays (``.npz``) plus a JSON manifest.

``RUN/checkpoints/round-XXXX.npz`` holds every array (global weights, algorithm server state,
server-optimiser moments, every site's persistent state) as ``arr_0, arr_1, ...``; the manifest
``round-XXXX.json`` says which array is which, the round, the SHA-256 of the ``.npz``, a
hash of the config and, in a run with differential privacy, the accountant's state (the
releases counted per site, :meth:`medsilo.privacy.accounting.PrivacyAccounting.state`; the
noise streams need nothing more than the round: docs/privacy.md, "Checkpoints and resume").
Both files are written to a temporary name and renamed (the manifest last), so a crash never
leaves a half-written checkpoint that looks complete; what such a crash does leave (a
``.tmp`` file, arrays without a manifest) is removed by the next save.

Loading refuses a checkpoint whose manifest or arrays are missing, whose ``.npz`` does not
match its hash (corrupted), or whose config hash differs from the run's (foreign). The config
hash covers the whole config except ``name``, ``output_dir`` and ``governance``: withdrawing a
site changes ``governance`` and is checked separately (:meth:`Checkpoint.check_absent`).
Nothing here depends on a runtime, so any coordinator can save and resume with it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medsilo.config import ConfigError, RunConfig
from medsilo.governance.config import CheckpointConfig
from medsilo.types import Weights

FORMAT = "medsilo-checkpoint/1"
StateDict = dict[str, Weights]


class CheckpointError(ConfigError):
    """A checkpoint that cannot be resumed from (missing, corrupted or foreign)."""


def config_hash(cfg: RunConfig) -> str:
    data = cfg.model_dump(
        mode="json", exclude={"name", "output_dir", "governance", "tracking", "anchor"}
    )
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass
class Checkpoint:
    """The engine state after ``round`` (round 0 would be the initial weights)."""

    round: int
    weights: Weights
    server_state: StateDict
    server_optimizer: StateDict
    site_states: dict[str, StateDict]
    sim_clock_s: float
    contributed: list[str]
    absent: dict[str, str]
    config_hash: str
    sites: list[str]
    #: The privacy accountant's state after ``round`` (``None`` in a run without DP).
    privacy: dict[str, Any] | None = None

    def check_resumable(self, cfg: RunConfig, sites: list[str], absent: dict[str, str]) -> None:
        """Refuse to resume ``cfg`` from this checkpoint unless the result stays exact."""
        if self.config_hash != config_hash(cfg):
            raise CheckpointError(
                f"checkpoint of round {self.round} belongs to another configuration "
                "(config hash mismatch): resume only with the config that wrote it"
            )
        if self.sites != sites:
            raise CheckpointError(
                f"checkpoint of round {self.round} has site roster {self.sites}, the run {sites}"
            )
        self.check_absent(absent)

    def privacy_state(self) -> dict[str, Any]:
        """The accountant's state a run with differential privacy resumes from."""
        if self.privacy is None:
            raise CheckpointError(
                f"checkpoint of round {self.round} holds no privacy accountant state: a run "
                "with differential privacy cannot resume from it (its spent budget is unknown)"
            )
        return self.privacy

    def check_absent(self, absent: dict[str, str]) -> None:
        """Sites may only become absent if they have not contributed up to this round."""
        returning = sorted(set(self.absent) - set(absent))
        if returning:
            raise CheckpointError(
                f"site(s) {returning} were absent up to round {self.round} but would train "
                "after it: that is not the run the checkpoint continues"
            )
        leaked = sorted((set(absent) - set(self.absent)) & set(self.contributed))
        if leaked:
            raise CheckpointError(
                f"site(s) {leaked} contributed by round {self.round}: withdrawing them needs a "
                "checkpoint from before their first contribution"
            )


def _flatten(arrays: list[np.ndarray], state: StateDict) -> dict[str, int]:
    layout: dict[str, int] = {}
    for key in sorted(state):
        layout[key] = len(state[key])
        arrays.extend(np.asarray(a) for a in state[key])
    return layout


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checkpoint_path(directory: Path, rnd: int) -> Path:
    return directory / f"round-{rnd:04d}.json"


def save_checkpoint(directory: Path, ckpt: Checkpoint) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    arrays: list[np.ndarray] = [np.asarray(w) for w in ckpt.weights]
    layout = {
        "weights": len(ckpt.weights),
        "server_state": _flatten(arrays, ckpt.server_state),
        "server_optimizer": _flatten(arrays, ckpt.server_optimizer),
        "site_states": {s: _flatten(arrays, ckpt.site_states[s]) for s in ckpt.sites},
    }
    manifest_path = checkpoint_path(directory, ckpt.round)
    npz_path = manifest_path.with_suffix(".npz")
    _atomic_write(npz_path, lambda f: np.savez(f, *arrays))
    manifest = {
        "format": FORMAT,
        "round": ckpt.round,
        "config_hash": ckpt.config_hash,
        "sites": ckpt.sites,
        "sim_clock_s": ckpt.sim_clock_s,
        "contributed": ckpt.contributed,
        "absent": ckpt.absent,
        "privacy": ckpt.privacy,
        "layout": layout,
        "arrays": len(arrays),
        "npz_sha256": _sha256(npz_path),
    }
    _atomic_write(manifest_path, lambda f: f.write(json.dumps(manifest, indent=1).encode()))
    return manifest_path


def load_checkpoint(manifest_path: Path) -> Checkpoint:
    """Read and verify one checkpoint (``round-XXXX.json``; its ``.npz`` beside it)."""
    if not manifest_path.is_file():
        raise CheckpointError(f"checkpoint manifest not found: {manifest_path}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{manifest_path} is not valid JSON: {err}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{manifest_path} is not a {FORMAT} manifest")
    npz_path = manifest_path.with_suffix(".npz")
    if not npz_path.is_file():
        raise CheckpointError(f"checkpoint arrays missing: {npz_path}")
    if _sha256(npz_path) != manifest["npz_sha256"]:
        raise CheckpointError(f"{npz_path} is corrupted (its SHA-256 differs from the manifest)")
    with np.load(npz_path, allow_pickle=False) as npz:
        count = int(manifest["arrays"])
        missing = [f"arr_{i}" for i in range(count) if f"arr_{i}" not in npz.files]
        if missing:
            raise CheckpointError(f"{npz_path} lacks arrays {missing[:5]}")
        arrays = [npz[f"arr_{i}"] for i in range(count)]
    layout = manifest["layout"]
    cursor = iter(arrays)

    def take(n: int) -> Weights:
        return [next(cursor) for _ in range(n)]

    def unflatten(shape: dict[str, int]) -> StateDict:
        return {key: take(n) for key, n in sorted(shape.items())}

    weights = take(layout["weights"])
    server_state = unflatten(layout["server_state"])
    server_optimizer = unflatten(layout["server_optimizer"])
    sites = list(manifest["sites"])
    site_states = {s: unflatten(layout["site_states"][s]) for s in sites}
    return Checkpoint(
        round=int(manifest["round"]),
        weights=weights,
        server_state=server_state,
        server_optimizer=server_optimizer,
        site_states=site_states,
        sim_clock_s=float(manifest["sim_clock_s"]),
        contributed=list(manifest["contributed"]),
        absent=dict(manifest["absent"]),
        config_hash=str(manifest["config_hash"]),
        sites=sites,
        privacy=manifest.get("privacy"),
    )


def checkpoint_rounds(directory: Path) -> list[int]:
    """Rounds with a complete (manifest written) checkpoint, ascending."""
    if not directory.is_dir():
        return []
    return sorted(int(p.stem.split("-")[1]) for p in directory.glob("round-*.json"))


def latest_before(directory: Path, rnd: int) -> Checkpoint | None:
    """The newest checkpoint of a round before ``rnd`` (``None``: start from scratch)."""
    earlier = [r for r in checkpoint_rounds(directory) if r < rnd]
    return load_checkpoint(checkpoint_path(directory, earlier[-1])) if earlier else None


#: What a deployed coordinator saves when the config names no ``governance.checkpoint``: it
#: always checkpoints, so that ``--resume`` works after any crash.
DEPLOYED_DEFAULT = CheckpointConfig(every=1, keep=3)


def deployed_checkpoints(cfg: RunConfig) -> CheckpointConfig:
    """The checkpoint settings of a deployed coordinator running ``cfg``; its sites read the
    same to know which of their round files a resume can still need."""
    chosen = cfg.governance.checkpoint
    return chosen if chosen is not None else DEPLOYED_DEFAULT


class CheckpointWriter:
    """Saves the engine state after the configured rounds and prunes old checkpoints."""

    def __init__(self, directory: Path, cfg: RunConfig, settings: CheckpointConfig) -> None:
        self.directory = directory
        self.hash = config_hash(cfg)
        self.settings = settings
        self.last_round = cfg.training.rounds

    def due(self, rnd: int) -> bool:
        return self.settings.due(rnd, self.last_round)

    def save(self, ckpt: Checkpoint) -> None:
        save_checkpoint(self.directory, ckpt)
        keep = self.settings.keep
        if keep != "all":
            for old in checkpoint_rounds(self.directory)[:-keep]:
                path = checkpoint_path(self.directory, old)
                path.unlink()  # manifest first: a half-deleted checkpoint is never "complete"
                path.with_suffix(".npz").unlink(missing_ok=True)
        remove_leftovers(self.directory)


def remove_leftovers(directory: Path) -> list[Path]:
    """Delete what an interrupted save or prune left in ``directory`` and return it: the
    temporary files of a write that never got renamed, and arrays whose manifest is gone
    (a prune stopped between its two deletions) or was never written (a save stopped
    between its two renames). Call it right after a save, when no write is under way."""
    leftovers = sorted(directory.glob(".round-*.tmp"))
    leftovers += [
        npz
        for npz in sorted(directory.glob("round-*.npz"))
        if not npz.with_suffix(".json").is_file()
    ]
    for path in leftovers:
        path.unlink(missing_ok=True)
    return leftovers
