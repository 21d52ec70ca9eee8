"""The MNIST setting several benchmarks share: 10 sites, Dirichlet(0.5) label skew, the CNN.

One definition, so "the same workload" in two benchmarks really is the same workload.
"""

from __future__ import annotations

from typing import Any


def mnist_dirichlet_config(
    name: str,
    seed: int,
    rounds: int,
    local_steps: int | None,
    max_train_samples: int | None,
    max_test_samples: int | None,
    **sections: Any,
) -> dict[str, Any]:
    """A raw run config (to be parsed): SGD lr 0.05, batch 32, ``local_steps`` or one local
    epoch; ``sections`` adds or replaces top-level sections (attack, robust, asynchrony...)."""
    training: dict[str, Any] = {"rounds": rounds, "batch_size": 32, "lr": 0.05}
    if local_steps:
        training["local_steps"] = local_steps
    else:
        training["local_epochs"] = 1
    return {
        "name": name,
        "seed": seed,
        "data": {
            "dataset": "mnist",
            "partition": "dirichlet",
            "num_sites": 10,
            "alpha": 0.5,
            "max_train_samples": max_train_samples,
            "max_test_samples": max_test_samples,
        },
        "model": {"name": "cnn"},
        "algorithm": {"name": "fedavg"},
        "training": training,
        **sections,
    }
