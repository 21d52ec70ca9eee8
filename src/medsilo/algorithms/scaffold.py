"""SCAFFOLD (Karimireddy et al. 2020), option II control variates.

Each local gradient is corrected by ``c - c_i`` (global minus site control variate), which
cancels client drift under non-IID data. The site's ``c_i`` persists in its state between the
rounds it is sampled in; the coordinator keeps ``c``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from medsilo.algorithms.base import (
    Algorithm,
    ServerState,
    SiteTask,
    make_update,
    train_from,
    trainable_pairs,
    weighted_delta,
)
from medsilo.algorithms.capabilities import Capabilities
from medsilo.models.weights import Layout, set_weights
from medsilo.training.local import TrainHooks
from medsilo.types import Update, Weights, add, weighted_mean, zeros_like


class _Correction(TrainHooks):
    def __init__(self, pairs: list[tuple[nn.Parameter, torch.Tensor]]) -> None:
        self.pairs = pairs

    def transform_gradients(self, model: nn.Module) -> None:
        for p, corr in self.pairs:
            if p.grad is not None:
                p.grad.add_(corr)


class Scaffold(Algorithm):
    name: ClassVar[str] = "scaffold"
    capabilities: Capabilities = Capabilities(
        aggregation="custom",
        requires_sgd=True,
        asynchrony_unsound="SCAFFOLD's control variates c and c_i are corrected once per "
        "synchronous round from the whole cohort; stale c_i updates arriving one at a time "
        "break the variance-reduction identity",
        client_dp_unsound="each site also sends its control-variate change "
        "delta_c_i = -c - delta_i / (K lr), the site's unclipped, un-noised update rescaled; "
        "client-level DP clips and noises only the model delta, so delta_c_i would release "
        "the update in the clear (clipping and noising it as well would need its own "
        "sensitivity bound and accounting, which medsilo does not implement)",
        secure_aggregation=False,
    )

    def init_server_state(self, weights: Weights, layout: Layout) -> ServerState:
        return {"c": zeros_like(weights)}

    def broadcast(self, server_state: ServerState) -> dict[str, Weights]:
        return {"c": server_state["c"]}

    def local_update(
        self, task: SiteTask, global_weights: Weights, payload: dict[str, Weights]
    ) -> Update:
        c = payload["c"]
        c_i = task.state.get("c", zeros_like(global_weights))
        correction: Weights = [a - b for a, b in zip(c, c_i, strict=True)]
        set_weights(task.model, global_weights)
        hooks = _Correction(trainable_pairs(task.model, task.layout, correction))
        local, stats = train_from(task, global_weights, hooks)
        scale = 1.0 / (stats.steps * task.training.lr)
        c_new = [
            (ci - cg + scale * (g - w)).astype(g.dtype) if trainable else np.zeros_like(g)
            for ci, cg, g, w, trainable in zip(
                c_i, c, global_weights, local, task.layout.trainable, strict=True
            )
        ]
        update = make_update(task, global_weights, local, stats)
        update.extras["delta_c"] = [a - b for a, b in zip(c_new, c_i, strict=True)]
        task.state["c"] = c_new
        return update

    def aggregate(
        self,
        global_weights: Weights,
        updates: list[Update],
        server_state: ServerState,
        layout: Layout,
        num_sites: int,
    ) -> tuple[Weights, ServerState]:
        mean_dc = weighted_mean([u.extras["delta_c"] for u in updates], [1.0] * len(updates))
        c = add(server_state["c"], mean_dc, scale=len(updates) / num_sites)
        return weighted_delta(updates), {"c": c}
