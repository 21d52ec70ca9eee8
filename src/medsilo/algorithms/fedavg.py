"""FedAvg (McMahan et al. 2017): local SGD from the global model, sample-weighted averaging."""

from __future__ import annotations

from typing import ClassVar

from medsilo.algorithms.base import Algorithm, SiteTask, make_update, train_from
from medsilo.algorithms.capabilities import Capabilities
from medsilo.types import Update, Weights


class FedAvg(Algorithm):
    name: ClassVar[str] = "fedavg"
    capabilities: Capabilities = Capabilities(dp_sgd=True)

    def local_update(
        self, task: SiteTask, global_weights: Weights, payload: dict[str, Weights]
    ) -> Update:
        local, stats = train_from(task, global_weights)
        return make_update(task, global_weights, local, stats)
