"""FedProx (Li et al. 2020): FedAvg plus a proximal term that limits client drift."""

from __future__ import annotations

from typing import ClassVar

from medsilo.algorithms.base import (
    Algorithm,
    ProximalTerm,
    SiteTask,
    make_update,
    train_from,
    trainable_pairs,
)
from medsilo.algorithms.capabilities import Capabilities
from medsilo.models.weights import set_weights
from medsilo.types import Update, Weights


class FedProx(Algorithm):
    name: ClassVar[str] = "fedprox"
    capabilities: Capabilities = Capabilities(dp_sgd=True)

    def __init__(self, mu: float = 0.01) -> None:
        if mu < 0:
            raise ValueError(f"FedProx mu must be >= 0, got {mu}")
        self.mu = mu

    def local_update(
        self, task: SiteTask, global_weights: Weights, payload: dict[str, Weights]
    ) -> Update:
        set_weights(task.model, global_weights)
        hooks = ProximalTerm(trainable_pairs(task.model, task.layout, global_weights), self.mu)
        local, stats = train_from(task, global_weights, hooks)
        return make_update(task, global_weights, local, stats)
