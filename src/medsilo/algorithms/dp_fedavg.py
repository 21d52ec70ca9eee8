"""DP-FedAvg (McMahan et al. 2018, "Learning differentially private recurrent language models").

Each site clips its update to l2 norm ``clip`` (fixed clipping); the coordinator averages the
``m`` clipped updates with equal weight and adds Gaussian noise of standard deviation
``noise_multiplier * clip / m`` per coordinate (central DP, the fixed-size-cohort estimator).
The noise comes from a generator seeded by ``(seed, round)``, so a run is reproducible.

There is no privacy accountant yet: the ``(epsilon, delta)`` this noise buys is not computed
(a later issue wraps a real accountant). The noise is added after transmission, so it does
not change what a site sends and thus not the transmitted-update leakage metric.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from medsilo.algorithms.base import Algorithm, ServerState, SiteTask, make_update, train_from
from medsilo.models.weights import Layout
from medsilo.types import Update, Weights, global_norm


def clip_update(delta: Weights, clip: float) -> tuple[Weights, float]:
    """Scale ``delta`` to l2 norm at most ``clip``; returns the clipped update and its old norm."""
    norm = global_norm(delta)
    factor = min(1.0, clip / norm) if norm > 0 else 1.0
    return [(d * factor).astype(d.dtype) for d in delta], norm


class DPFedAvg(Algorithm):
    name: ClassVar[str] = "dp_fedavg"

    def __init__(self, clip: float = 1.0, noise_multiplier: float = 1.0, seed: int = 0) -> None:
        if clip <= 0 or noise_multiplier < 0:
            raise ValueError(
                f"DP-FedAvg needs clip > 0 and noise_multiplier >= 0, got {clip}, "
                f"{noise_multiplier}"
            )
        self.clip = clip
        self.noise_multiplier = noise_multiplier
        self.seed = seed

    def init_server_state(self, weights: Weights, layout: Layout) -> ServerState:
        return {"round": [np.zeros(1, dtype=np.int64)]}

    def local_update(
        self, task: SiteTask, global_weights: Weights, payload: dict[str, Weights]
    ) -> Update:
        local, stats = train_from(task, global_weights)
        update = make_update(task, global_weights, local, stats)
        update.delta, norm = clip_update(update.delta, self.clip)
        update.metrics.update(update_norm=norm, clipped=float(norm > self.clip))
        return update

    def aggregate(
        self,
        global_weights: Weights,
        updates: list[Update],
        server_state: ServerState,
        layout: Layout,
        num_sites: int,
    ) -> tuple[Weights, ServerState]:
        m = len(updates)
        rnd = int(server_state.get("round", [np.zeros(1, np.int64)])[0][0]) + 1
        rng = np.random.default_rng([self.seed, rnd, 0xD9])
        std = self.noise_multiplier * self.clip / m
        out: Weights = []
        for i, ref in enumerate(updates[0].delta):
            total = sum(u.delta[i].astype(np.float64) for u in updates) / m
            noisy = total + rng.normal(0.0, std, size=ref.shape) if std > 0 else total
            out.append(np.asarray(noisy, dtype=ref.dtype))
        return out, {**server_state, "round": [np.array([rnd], dtype=np.int64)]}
