"""Every layer medsilo adds around training works with a hospital model, not only the toy
ones: MONAI's ResNet-18 (BatchNorm, 11M parameters) under secure aggregation, compression,
a robust rule, CC-PGD and DP-SGD (BatchNorm converted to GroupNorm)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from medsilo.runtime.simulation import run_federation

from ..conftest import small_config

FEATURES: dict[str, dict[str, Any]] = {
    "secure_aggregation": {"secure_aggregation": {"enabled": True}},
    "topk_compression": {"compression": {"codec": "topk", "k": 0.01, "error_feedback": True}},
    "median_rule": {"robust": {"rule": "median"}},
    "ccpgd": {"algorithm": {"name": "ccpgd"}},
    "dp_sgd": {
        "model": {"name": "resnet18", "batch_norm": "group_norm"},
        "privacy": {"dp_sgd": {"noise_multiplier": 0.5, "max_grad_norm": 1.0}},
    },
}


@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_resnet18_trains_under(feature: str) -> None:
    cfg = small_config(
        **{
            "data": {
                "dataset": "breastmnist",
                "partition": "iid",
                "num_sites": 3,
                "max_train_samples": 24,
                "max_test_samples": 12,
            },
            "model": {"name": "resnet18"},
            "training": {"rounds": 1, "local_steps": 1, "batch_size": 4, "lr": 0.01},
            "evaluation": {"bootstrap_replicates": 0},
            **FEATURES[feature],
        }
    )
    result = run_federation(cfg)
    record = result.rounds[-1]
    assert record["sites"] and not record["skipped"]
    assert math.isfinite(record["test"]["loss"])
    assert len(result.weights) > 60  # the whole ResNet-18 came back, not a stand-in
