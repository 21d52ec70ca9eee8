"""FedBN (Li et al. 2021): normalisation layers stay at each hospital.

Scanner and protocol differences show up as feature-statistics shift; keeping BatchNorm
parameters and running statistics local absorbs that shift while the rest is shared.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from medsilo.algorithms.base import Algorithm, SiteState, SiteTask, make_update, train_from
from medsilo.algorithms.capabilities import Capabilities
from medsilo.models.weights import Layout
from medsilo.types import Update, Weights


def with_local_norms(global_weights: Weights, state: SiteState, layout: Layout) -> Weights:
    local = state.get("norm")
    if local is None:
        return global_weights
    it = iter(local)
    return [
        next(it) if is_norm else g
        for g, is_norm in zip(global_weights, layout.norm_layer, strict=True)
    ]


class FedBN(Algorithm):
    name: ClassVar[str] = "fedbn"
    capabilities: Capabilities = Capabilities(requires_batch_norm=True)

    def local_update(
        self, task: SiteTask, global_weights: Weights, payload: dict[str, Weights]
    ) -> Update:
        if not any(task.layout.norm_layer):
            raise ValueError("FedBN needs a model with normalisation layers (e.g. model 'cnn_bn')")
        start = with_local_norms(global_weights, task.state, task.layout)
        local, stats = train_from(task, start)
        task.state["norm"] = [w for w, n in zip(local, task.layout.norm_layer, strict=True) if n]
        update = make_update(task, global_weights, local, stats)
        update.delta = [
            np.zeros_like(d) if n else d
            for d, n in zip(update.delta, task.layout.norm_layer, strict=True)
        ]
        return update

    def site_weights(self, global_weights: Weights, state: SiteState, layout: Layout) -> Weights:
        return with_local_norms(global_weights, state, layout)
