"""Run a federation while observers (GTG-Shapley, the free-rider detector) see every round's
aggregated updates.

The observer needs ``(w_t, accepted updates)`` at the moment the coordinator aggregates.
Rather than adding a hook to the engine, the run's algorithm gets its ``aggregate`` wrapped
on the instance: the wrapper hands its arguments to the observer and then calls the real
method unchanged, so the run (weights, records, random streams) is bit-identical to a run
without the observer; ``run_federation(..., algorithm=...)`` already accepts the instance.
Re-running a finished run directory's config reproduces that run, which is how
``medsilo contribution`` computes the scores post hoc.

Only configurations where the coordinator's update is the FedAvg step of the deltas it
aggregates are accepted (see :func:`unsupported_reason`), because that is what the
reconstruction ``w_t + eta * mean(delta_S)`` assumes.
"""

from __future__ import annotations

from collections.abc import Callable

from medsilo.algorithms.base import Algorithm, ServerState
from medsilo.asynchrony import SyncConfig
from medsilo.config import BASELINES, RunConfig, ServerSGDConfig
from medsilo.contribution.gtg import GTGSettings, GTGShapley
from medsilo.contribution.metric import Metric, Validator
from medsilo.models.weights import Layout
from medsilo.runtime.factory import build_run_algorithm
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.round_record import RoundRecord
from medsilo.runtime.simulation import FederationResult, run_federation
from medsilo.types import Update, Weights


def unsupported_reason(cfg: RunConfig) -> str | None:
    """Why round-wise reconstruction does not describe this run, or ``None``."""
    if cfg.algorithm.name in BASELINES:
        return f"algorithm {cfg.algorithm.name!r} is a baseline without federated rounds"
    if cfg.capabilities().aggregation != "weighted_mean":
        return f"{cfg.algorithm.name!r} aggregates with its own rule, not the mean of deltas"
    if not isinstance(cfg.asynchrony, SyncConfig):
        return "asynchronous runs have no rounds of jointly aggregated updates"
    if not isinstance(cfg.server_optimizer, ServerSGDConfig):
        return "the server optimiser must be plain SGD (momentum/Adam state is not per subset)"
    if cfg.robust.rule != "none":
        return f"robust.rule {cfg.robust.rule!r} does not aggregate by the mean of deltas"
    if cfg.secure_aggregation.enabled:
        return "with secure aggregation the coordinator never sees individual updates"
    return None


def observe_aggregation(
    algorithm: Algorithm, observer: Callable[[Weights, list[Update]], None]
) -> None:
    """Make ``algorithm.aggregate`` call ``observer(global weights, updates)`` first."""
    inner = algorithm.aggregate

    def aggregate(
        global_weights: Weights,
        updates: list[Update],
        server_state: ServerState,
        layout: Layout,
        num_sites: int,
    ) -> tuple[Weights, ServerState]:
        observer(global_weights, updates)
        return inner(global_weights, updates, server_state, layout, num_sites)

    setattr(algorithm, "aggregate", aggregate)  # noqa: B010 - instance-level wrap, on purpose


#: ``observer(round, global weights, updates)``, called as the coordinator aggregates.
RoundObserver = Callable[[int, Weights, list[Update]], object]


def run_observed(
    cfg: RunConfig,
    prep: PreparedFederation,
    observers: list[RoundObserver],
    on_round: Callable[[RoundRecord], None] | None = None,
) -> FederationResult:
    """Run ``cfg`` on ``prep`` with every observer seeing each round's aggregated updates."""
    completed = 0

    def count(record: RoundRecord) -> None:
        nonlocal completed
        completed = int(record["round"])
        if on_round is not None:
            on_round(record)

    def observe(weights: Weights, updates: list[Update]) -> None:
        for observer in observers:  # aggregation precedes the round's record
            observer(completed + 1, weights, updates)

    algo = build_run_algorithm(cfg, len(prep.fed.sites))
    observe_aggregation(algo, observe)
    return run_federation(cfg, prepared=prep, algorithm=algo, on_round=count)


def shapley_observer(
    cfg: RunConfig, prep: PreparedFederation, metric: Metric, settings: GTGSettings
) -> GTGShapley:
    """The GTG-Shapley accumulator for ``cfg`` (refused where reconstruction does not hold)."""
    reason = unsupported_reason(cfg)
    if reason is not None:
        raise ValueError(f"GTG-Shapley cannot score this run: {reason}")
    assert isinstance(cfg.server_optimizer, ServerSGDConfig)
    return GTGShapley(
        Validator(prep.model, prep.pooled_test, metric), cfg.server_optimizer.lr, settings
    )


def run_with_shapley(
    cfg: RunConfig,
    prep: PreparedFederation,
    metric: Metric,
    settings: GTGSettings,
    on_round: Callable[[RoundRecord], None] | None = None,
) -> tuple[FederationResult, GTGShapley]:
    """Run ``cfg`` on ``prep`` and return the result with the accumulated round-wise values."""
    gtg = shapley_observer(cfg, prep, metric, settings)
    return run_observed(cfg, prep, [gtg.observe], on_round), gtg
