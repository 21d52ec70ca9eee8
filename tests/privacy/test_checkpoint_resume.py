"""Checkpoint/resume with differential privacy: a run stopped after round k and resumed
from its checkpoint equals the uninterrupted run bit for bit, epsilon included.

What a checkpoint must hold for that (docs/privacy.md, "Checkpoints and resume"): the
accountant's releases per site (in the manifest); the noise streams are keyed by the seed,
the round and the site, so the checkpoint's round (and the DP layer's round counter and
adaptive clip in the server state) restores them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medsilo.config import RunConfig
from medsilo.data.base import FederatedData
from medsilo.governance.checkpoint import (
    CheckpointError,
    CheckpointWriter,
    checkpoint_path,
    load_checkpoint,
)
from medsilo.governance.config import CheckpointConfig
from medsilo.privacy.accountant import epsilon
from medsilo.runtime.simulation import run_federation
from tests.conftest import small_config

TRAIN = {"rounds": 5, "local_steps": 4, "batch_size": 8, "lr": 0.1}
ADAPTIVE = {"target_quantile": 0.5, "lr": 0.2, "count_stddev": 2.0}
#: Central noise with adaptive clipping and cohorts of 2 of 3 (both noise streams of the
#: coordinator and the sampled cohort), a budget that stops the run after round 4.
CENTRAL: dict[str, Any] = {
    "algorithm": {"name": "dp_fedavg", "clip": 0.5, "noise_multiplier": 1.5}
    | {"adaptive_clip": ADAPTIVE},
    "training": TRAIN | {"fraction": 0.67},
    "privacy": {
        "target_epsilon": (epsilon(1.5, 2 / 3, 4, 1e-5) + epsilon(1.5, 2 / 3, 5, 1e-5)) / 2
    },
}
#: Each site adds its share of the noise (site-side stream) around FedProx.
LOCAL: dict[str, Any] = {
    "algorithm": {"name": "fedprox", "mu": 0.01},
    "training": TRAIN,
    "privacy": {"client_dp": {"clip": 0.5, "noise_multiplier": 1.0, "noise": "local"}},
}
#: Sample-level DP-SGD: every site's Poisson batches and Opacus noise.
DPSGD: dict[str, Any] = {
    "training": TRAIN,
    "privacy": {"dp_sgd": {"noise_multiplier": 1.0, "max_grad_norm": 1.0}},
}


class Crash(Exception):
    pass


def _crash_after(rnd: int) -> Any:
    def on_round(record: Any) -> None:
        if record["round"] == rnd:
            raise Crash

    return on_round


def _stopped_at_round_2(cfg: RunConfig, fed: FederatedData, tmp_path: Path) -> Path:
    """Run with a checkpoint every round, crash while recording round 3: the newest
    checkpoint is round 2's."""
    writer = CheckpointWriter(tmp_path, cfg, CheckpointConfig(every=1))
    with pytest.raises(Crash):
        run_federation(cfg, fed, on_round=_crash_after(3), checkpoints=writer)
    return checkpoint_path(tmp_path, 2)


@pytest.mark.parametrize("overrides", [CENTRAL, LOCAL, DPSGD], ids=["central", "local", "dp_sgd"])
def test_a_dp_run_resumed_after_round_2_equals_the_uninterrupted_run(
    overrides: dict[str, Any], tmp_path: Path, fed: FederatedData
) -> None:
    cfg = small_config(**overrides)
    straight = run_federation(cfg, fed)
    resumed = run_federation(
        cfg, fed, resume=load_checkpoint(_stopped_at_round_2(cfg, fed, tmp_path))
    )
    assert [r["round"] for r in resumed.rounds] == [r["round"] for r in straight.rounds[2:]]
    for a, b in zip(straight.weights, resumed.weights, strict=True):
        assert np.array_equal(a, b)
    for a, b in zip(straight.rounds[2:], resumed.rounds, strict=True):
        assert a["global_model_sha256"] == b["global_model_sha256"]
        assert a["privacy"] == b["privacy"]  # epsilon (per site with DP-SGD), clip, ...
        assert a.get("stop_reason") == b.get("stop_reason")
    assert resumed.rounds[-1]["privacy"]["epsilon"] == straight.rounds[-1]["privacy"]["epsilon"]


def test_the_budget_stop_survives_a_resume(tmp_path: Path, fed: FederatedData) -> None:
    cfg = small_config(**CENTRAL)
    resumed = run_federation(
        cfg, fed, resume=load_checkpoint(_stopped_at_round_2(cfg, fed, tmp_path))
    )
    assert [r["round"] for r in resumed.rounds] == [3, 4]  # the spent budget was restored
    assert "round 5 would take epsilon" in resumed.rounds[-1]["stop_reason"]


def test_a_dp_checkpoint_without_the_accountant_state_is_refused(
    tmp_path: Path, fed: FederatedData
) -> None:
    cfg = small_config(**DPSGD)
    manifest_path = _stopped_at_round_2(cfg, fed, tmp_path)
    manifest = json.loads(manifest_path.read_text())
    assert manifest["privacy"]["rounds_done"] == 2
    assert manifest["privacy"]["trained"] == {s.name: 2 for s in fed.sites}
    manifest["privacy"] = None
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="no privacy accountant state"):
        run_federation(cfg, fed, resume=load_checkpoint(manifest_path))
