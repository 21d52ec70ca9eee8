"""The MedMNIST benchmark runs end to end with tiny settings and reads the right numbers."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from medsilo.bench.medmnist import PAPER, medmnist_config, run_medmnist_benchmark


def test_medmnist_benchmark_reports_federated_and_pooled_auc() -> None:
    buffer = io.StringIO()
    results = run_medmnist_benchmark(
        Console(file=buffer, width=160),
        datasets=("breastmnist",),
        seeds=(0,),
        rounds=1,
        model="cnn",
        max_train=64,
    )
    runs = results["breastmnist"]
    assert set(runs) == {"fedavg", "pooled"}
    for outcome in runs["fedavg"] + runs["pooled"]:
        assert 0.0 <= outcome.auc <= 1.0 and 0.0 <= outcome.accuracy <= 1.0
    assert f"{PAPER['breastmnist'][0]:.3f}" in buffer.getvalue()


def test_the_federation_is_four_non_iid_sites_with_the_paper_optimiser() -> None:
    cfg = medmnist_config("pneumoniamnist", "fedavg", seed=2, rounds=5)
    assert (cfg.data.partition, cfg.data.num_sites, cfg.model.name) == ("dirichlet", 4, "resnet18")
    assert (cfg.training.optimizer, cfg.training.lr, cfg.training.local_epochs) == (
        "adam",
        1e-3,
        1.0,
    )
    with pytest.raises(ValueError, match="no paper figures"):
        run_medmnist_benchmark(Console(file=io.StringIO()), datasets=("mnist",))
