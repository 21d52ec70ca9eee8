"""The MNIST setting several benchmarks share: 10 sites, Dirichlet(0.5) label skew, the CNN.

One definition, so "the same workload" in two benchmarks really is the same workload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Everything about the setting that no budget changes, as the benchmarks' tables state it.
SETTING = "MNIST, 10 sites, Dirichlet(0.5), CNN, SGD lr 0.05, batch 32"


@dataclass(frozen=True)
class MnistBudget:
    """How much of the setting a benchmark runs: rounds, local work and sample caps."""

    rounds: int
    max_train_samples: int | None
    max_test_samples: int | None
    local_steps: int | None  # None: one local epoch, as mnist_fedavg

    def local_work(self) -> str:
        return f"{self.local_steps} local steps" if self.local_steps else "1 local epoch"

    def samples(self) -> str:
        train = self.max_train_samples or "all"
        test = self.max_test_samples or "all"
        return f"{train} training / {test} test samples"

    def config(self, name: str, seed: int, **sections: Any) -> dict[str, Any]:
        """A raw run config (to be parsed); ``sections`` adds or replaces top-level sections
        (attack, robust, asynchrony...)."""
        training: dict[str, Any] = {"rounds": self.rounds, "batch_size": 32, "lr": 0.05}
        if self.local_steps:
            training["local_steps"] = self.local_steps
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
                "max_train_samples": self.max_train_samples,
                "max_test_samples": self.max_test_samples,
            },
            "model": {"name": "cnn"},
            "algorithm": {"name": "fedavg"},
            "training": training,
            **sections,
        }
