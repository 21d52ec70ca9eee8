"""A hospital model (MONAI's ResNet-18, BatchNorm and all) gives the same run in the Flower
apps as in the in-process engine: the same rounds, records and final weights."""

from __future__ import annotations

import pytest

from medsilo.data.registry import build_federation
from medsilo.runtime.simulation import run_federation

from ...conftest import small_config
from .test_apps_inprocess import (  # noqa: F401  (task_identity, one_thread: fixtures)
    assert_same_run,
    one_thread,
    run_in_process,
    task_identity,
)


@pytest.mark.slow
def test_resnet18_runs_alike_in_the_engine_and_the_flower_apps() -> None:
    cfg = small_config(
        data={
            "dataset": "breastmnist",
            "partition": "dirichlet",
            "alpha": 1.0,
            "num_sites": 2,
            "max_train_samples": 32,
            "max_test_samples": 16,
        },
        model={"name": "resnet18"},
        algorithm={"name": "fedprox", "mu": 0.1},
        training={"rounds": 2, "local_steps": 2, "batch_size": 8, "lr": 0.05, "momentum": 0.9},
        evaluation={"bootstrap_replicates": 5},
    )
    fed = build_federation(cfg.data, cfg.seed)
    engine = run_federation(cfg, fed)
    flower, _ = run_in_process(cfg, fed)
    assert_same_run(flower, engine)
    assert engine.rounds[-1]["metrics"]["pooled"]["auroc"] is not None
