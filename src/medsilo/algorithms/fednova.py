"""FedNova (Wang et al. 2020): normalised averaging that removes objective inconsistency.

Sites that take more local steps would otherwise pull the global model towards their own
optimum. Each update is divided by its effective step count ``a_i`` before averaging, then
rescaled by the sample-weighted mean ``tau_eff``.
"""

from __future__ import annotations

from typing import ClassVar

from medsilo.algorithms.base import Algorithm, ServerState, SiteTask, make_update, train_from
from medsilo.algorithms.capabilities import Capabilities
from medsilo.models.weights import Layout
from medsilo.types import Update, Weights, weighted_mean


def effective_steps(steps: int, momentum: float) -> float:
    """``a_i`` for local SGD with heavy-ball momentum rho (rho=0 gives the step count)."""
    if momentum == 0:
        return float(steps)
    rho = momentum
    return (steps - rho * (1 - rho**steps) / (1 - rho)) / (1 - rho)


class FedNova(Algorithm):
    name: ClassVar[str] = "fednova"
    capabilities: Capabilities = Capabilities(
        aggregation="custom",
        requires_sgd=True,
        asynchrony_unsound="FedNova normalises every update by the cohort's local step counts "
        "in one round; asynchronous arrivals have no common round to normalise over",
        client_dp_unsound="FedNova weighs each update by its sample count and divides it by "
        "its step count a_i, but client-level DP releases only the equal-weight noisy mean "
        "of the clipped deltas, which has neither",
        secure_aggregation=False,
    )

    def local_update(
        self, task: SiteTask, global_weights: Weights, payload: dict[str, Weights]
    ) -> Update:
        local, stats = train_from(task, global_weights)
        update = make_update(task, global_weights, local, stats)
        update.metrics["a_i"] = effective_steps(stats.steps, task.training.momentum)
        return update

    def aggregate(
        self,
        global_weights: Weights,
        updates: list[Update],
        server_state: ServerState,
        layout: Layout,
        num_sites: int,
    ) -> tuple[Weights, ServerState]:
        p = [float(u.num_examples) for u in updates]
        a = [u.metrics["a_i"] for u in updates]
        normalised = [[d / a_i for d in u.delta] for u, a_i in zip(updates, a, strict=True)]
        tau_eff = sum(pi * ai for pi, ai in zip(p, a, strict=True)) / sum(p)
        direction = weighted_mean(normalised, p)
        return [tau_eff * d for d in direction], server_state
