"""Ditto (Li et al. 2021): a global FedAvg model plus a personal model per hospital.

The personal model is trained on local data with a proximal pull (strength ``lam``) towards
the current global model, so a hospital gets a model tuned to its population without
drifting arbitrarily far from what the federation learned.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from medsilo.algorithms.base import (
    Algorithm,
    ProximalTerm,
    SiteState,
    SiteTask,
    make_update,
    train_from,
    trainable_pairs,
)
from medsilo.algorithms.capabilities import Capabilities
from medsilo.models.weights import Layout, set_weights
from medsilo.types import Update, Weights


class Ditto(Algorithm):
    name: ClassVar[str] = "ditto"
    capabilities: Capabilities = Capabilities(
        asynchrony_unsound="Ditto's personal models are regularised toward the global model "
        "of the same round; with asynchronous versions that anchor is not defined",
        secure_aggregation=False,
    )

    def __init__(self, lam: float = 0.1) -> None:
        if lam < 0:
            raise ValueError(f"Ditto lam must be >= 0, got {lam}")
        self.lam = lam

    def local_update(
        self, task: SiteTask, global_weights: Weights, payload: dict[str, Weights]
    ) -> Update:
        local, stats = train_from(task, global_weights)
        update = make_update(task, global_weights, local, stats)

        personal_start = task.state.get("personal", global_weights)
        set_weights(task.model, personal_start)
        hooks = ProximalTerm(trainable_pairs(task.model, task.layout, global_weights), self.lam)
        personal_gen = torch.Generator().manual_seed(int(task.generator.initial_seed()) + 1)
        personal, p_stats = train_from(
            task, personal_start, hooks, steps=stats.steps, generator=personal_gen
        )
        task.state["personal"] = personal
        update.metrics["personal_train_loss"] = p_stats.mean_loss
        return update

    def site_weights(self, global_weights: Weights, state: SiteState, layout: Layout) -> Weights:
        return state.get("personal", global_weights)
