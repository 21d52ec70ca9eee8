"""A MONAI network federates end to end in the engine."""

from __future__ import annotations

import json
import math
from pathlib import Path

from medsilo.experiment import run_experiment

from ..conftest import small_config


def test_resnet18_federates_over_two_sites_of_breastmnist(tmp_path: Path) -> None:
    cfg = small_config(
        data={
            "dataset": "breastmnist",
            "partition": "iid",
            "num_sites": 2,
            "max_train_samples": 24,
            "max_test_samples": 12,
        },
        model={"name": "resnet18"},
        training={"rounds": 2, "local_steps": 1, "batch_size": 4, "lr": 0.05},
    )
    res = run_experiment(cfg, tmp_path / "run")
    rounds = res.result.rounds
    assert [r["round"] for r in rounds] == [1, 2]
    assert all(r["bytes_up"] > 2 * 4 * 11_000_000 for r in rounds)  # two ResNet-18 updates
    assert math.isfinite(rounds[-1]["test"]["loss"])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["model"] == "resnet18" and summary["sites"] == ["site-00", "site-01"]
