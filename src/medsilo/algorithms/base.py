"""The contract between an algorithm and the runtimes that drive it.

An algorithm has a site half (:meth:`Algorithm.local_update`) and a coordinator half
(:meth:`Algorithm.aggregate`). Both runtimes, the in-process engine and the Flower adapters,
call exactly this pair, so there is one copy of each algorithm. Per-site state (SCAFFOLD's
control variate, Ditto's personal model, FedBN's local norm layers) lives in
``SiteTask.state`` as plain ``Weights`` so any runtime can persist it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from medsilo.algorithms.capabilities import Capabilities
from medsilo.models.weights import Layout, get_weights, set_weights
from medsilo.training.local import LocalStats, LocalTraining, TrainHooks, train_local
from medsilo.training.samples import Samples
from medsilo.types import Update, Weights, subtract, weighted_mean

SiteState = dict[str, Weights]
ServerState = dict[str, Weights]


@dataclass
class SiteTask:
    """Everything a site needs for one round of local work."""

    site: str
    round: int
    model: nn.Module
    layout: Layout
    data: Samples
    training: LocalTraining
    generator: torch.Generator
    state: SiteState = field(default_factory=dict)
    #: 1 when the site's platform record admits a known exploitable TEE vulnerability
    #: (:func:`medsilo.confidential.vulnerabilities.exploit_indicator`); CC-PGD uses it.
    exploit_indicator: int = 0


class Algorithm(ABC):
    name: ClassVar[str]
    #: What the algorithm supports (:mod:`medsilo.algorithms.capabilities`); every
    #: compatibility refusal is derived from it. Declared on the class; a wrapper such as
    #: client-level DP sets its own per instance.
    capabilities: Capabilities = Capabilities()

    def init_server_state(self, weights: Weights, layout: Layout) -> ServerState:
        return {}

    def broadcast(self, server_state: ServerState) -> dict[str, Weights]:
        """Extra arrays sent to every site with the global weights."""
        return {}

    @abstractmethod
    def local_update(
        self, task: SiteTask, global_weights: Weights, payload: dict[str, Weights]
    ) -> Update: ...

    def aggregate(
        self,
        global_weights: Weights,
        updates: list[Update],
        server_state: ServerState,
        layout: Layout,
        num_sites: int,
    ) -> tuple[Weights, ServerState]:
        """Combine site updates into one global delta (sample-weighted mean by default)."""
        return weighted_delta(updates), server_state

    def site_weights(self, global_weights: Weights, state: SiteState, layout: Layout) -> Weights:
        """The weights a site would deploy (personalised algorithms override this)."""
        return global_weights


def weighted_delta(updates: list[Update]) -> Weights:
    return weighted_mean([u.delta for u in updates], [float(u.num_examples) for u in updates])


def train_from(
    task: SiteTask,
    start: Weights,
    hooks: TrainHooks | None = None,
    steps: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Weights, LocalStats]:
    """Load ``start`` into the site's model, train, and return the new weights."""
    set_weights(task.model, start)
    stats = train_local(
        task.model, task.data, task.training, generator or task.generator, hooks, steps
    )
    return get_weights(task.model), stats


def make_update(
    task: SiteTask, global_weights: Weights, local: Weights, stats: LocalStats
) -> Update:
    return Update(
        site=task.site,
        delta=subtract(local, global_weights),
        num_examples=len(task.data),
        num_steps=stats.steps,
        metrics={"train_loss": stats.mean_loss},
    )


def trainable_pairs(
    model: nn.Module, layout: Layout, weights: Weights
) -> list[tuple[nn.Parameter, torch.Tensor]]:
    """Pair each trainable parameter with the matching entry of ``weights`` as a tensor.

    Frozen parameters (a LoRA backbone) are skipped: they neither train nor travel."""
    position = {name: i for i, name in enumerate(layout.names)}
    return [
        (p, torch.from_numpy(np.require(weights[position[name]], requirements="C")).to(p.device))
        for name, p in model.named_parameters()
        if p.requires_grad
    ]


class ProximalTerm(TrainHooks):
    """``mu/2 * ||w - anchor||^2`` over trainable parameters (FedProx, Ditto)."""

    def __init__(self, pairs: list[tuple[nn.Parameter, torch.Tensor]], mu: float) -> None:
        self.pairs = pairs
        self.mu = mu

    def extra_loss(self, model: nn.Module) -> torch.Tensor | None:
        if self.mu == 0:
            return None
        total = sum(((p - a) ** 2).sum() for p, a in self.pairs)
        return 0.5 * self.mu * total  # type: ignore[return-value]
