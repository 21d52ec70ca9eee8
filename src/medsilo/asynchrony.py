"""``asynchrony:`` in a run config: synchronous rounds, FedAsync or FedBuff (docs/asynchronous.md).

* ``sync`` (default): rounds as before; the coordinator waits for every sampled site until
  ``round_timeout_s`` after the round started, then aggregates what arrived (a site that
  dropped out or is too slow is left out of that round, it never stalls the run).
* ``fedasync`` (Xie et al. 2019, "Asynchronous federated optimization"): every arriving
  update is mixed in at once, ``x <- (1 - a_t) x + a_t x_site`` with
  ``a_t = alpha * s(staleness)``; ``s`` is ``constant`` (1), ``polynomial``
  (``(1 + staleness)^-a``) or ``hinge`` (1 while ``staleness <= b``, else
  ``1 / (a (staleness - b) + 1)``).
* ``fedbuff`` (Nguyen et al. 2022, "Federated learning with buffered asynchronous
  aggregation"): arriving deltas are buffered; every ``buffer_size`` of them, each is scaled
  by ``1 / sqrt(1 + staleness)`` and the algorithm's mean of the buffer is applied through
  the configured server optimiser (its ``lr`` is FedBuff's server learning rate).

Staleness is the number of server model versions applied between the version a site
downloaded and the one its update lands on. Both asynchronous modes keep
``cohort_size(training.fraction)`` sites working at once and stop after ``updates`` client
updates (default: as many local trainings as the synchronous run would do) or at
``max_sim_time_s``.

This module has no import from :mod:`medsilo.config`, which imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from medsilo.aggregation.robust import bulyan_min_updates, krum_min_updates

if TYPE_CHECKING:
    from medsilo.config import RunConfig

#: Algorithms whose site state or coordinator maths assumes a fixed, synchronous cohort.
ASYNC_UNSOUND = {
    "scaffold": "SCAFFOLD's control variates c and c_i are corrected once per synchronous "
    "round from the whole cohort; stale c_i updates arriving one at a time break the "
    "variance-reduction identity",
    "fednova": "FedNova normalises every update by the cohort's local step counts in one "
    "round; asynchronous arrivals have no common round to normalise over",
    "ditto": "Ditto's personal models are regularised toward the global model of the same "
    "round; with asynchronous versions that anchor is not defined",
}

_MODEL = ConfigDict(extra="forbid", frozen=True)


class SyncConfig(BaseModel):
    model_config = _MODEL

    mode: Literal["sync"] = "sync"
    round_timeout_s: float = Field(
        3600.0,
        gt=0,
        description="simulated seconds the coordinator waits for a round's updates; sites "
        "that dropped out or arrive later are left out of that round",
    )


class StalenessConfig(BaseModel):
    """FedAsync's staleness function ``s(t)`` (Xie et al. 2019, section 5.2)."""

    model_config = _MODEL

    function: Literal["constant", "polynomial", "hinge"] = "polynomial"
    a: float = Field(0.5, ge=0, description="polynomial exponent / hinge slope")
    b: float = Field(4.0, ge=0, description="hinge: staleness tolerated at full weight")


class _AsyncBase(BaseModel):
    model_config = _MODEL

    updates: int | None = Field(
        None,
        ge=1,
        description="client updates to apply before stopping (default: training.rounds x "
        "the cohort size, the synchronous run's number of local trainings)",
    )
    max_sim_time_s: float | None = Field(
        None, gt=0, description="also stop once the simulated clock passes this"
    )
    dispatch_timeout_s: float = Field(
        3600.0,
        gt=0,
        description="simulated seconds after which the coordinator gives up on a dispatched "
        "task that has not returned and hands its slot to another site",
    )


class FedAsyncConfig(_AsyncBase):
    mode: Literal["fedasync"]
    alpha: float = Field(0.6, gt=0, le=1, description="mixing weight of a fresh update")
    staleness: StalenessConfig = StalenessConfig()


class FedBuffConfig(_AsyncBase):
    mode: Literal["fedbuff"]
    buffer_size: int = Field(5, ge=1, description="K: updates aggregated per server step")


AsynchronyConfig = Annotated[
    SyncConfig | FedAsyncConfig | FedBuffConfig, Field(discriminator="mode")
]


def asynchrony_problem(cfg: RunConfig) -> str | None:
    """Why ``cfg``'s asynchronous mode cannot run as configured, or ``None`` when it can."""
    mode = cfg.asynchrony
    if isinstance(mode, SyncConfig):
        return None
    algo = cfg.algorithm.name
    if algo in ("pooled", "local"):
        return f"baseline {algo!r} exchanges no updates; asynchrony applies to federated runs"
    if algo in ASYNC_UNSOUND:
        return (
            f"asynchrony.mode {mode.mode!r} cannot run algorithm {algo!r}: " + ASYNC_UNSOUND[algo]
        )
    secure = getattr(cfg, "secure_aggregation", None)
    if secure is not None and getattr(secure, "enabled", False):
        return (
            f"asynchrony.mode {mode.mode!r} cannot use secure aggregation: pairwise masks "
            "cancel only when the coordinator sums the masked updates of the fixed cohort that "
            "agreed on the masks in one round; asynchronous updates arrive one by one from "
            "changing sets of sites"
        )
    rule = cfg.robust
    if isinstance(mode, FedAsyncConfig):
        if rule.rule not in ("none", "norm_bound"):
            return (
                f"robust.rule {rule.rule!r} compares several updates, but fedasync applies each "
                "update alone; use norm_bound (per update) or asynchrony.mode fedbuff"
            )
        if cfg.training.min_sites > 1:
            return (
                f"fedasync applies each update alone, but training.min_sites is "
                f"{cfg.training.min_sites}; set it to 1 or use asynchrony.mode fedbuff"
            )
        opt = cfg.server_optimizer
        if opt.name != "sgd" or opt.lr != 1.0:
            return (
                "fedasync's server step is the mixing x <- (1 - a_t) x + a_t x_site; leave "
                "server_optimizer as sgd with lr 1.0 and tune asynchrony.alpha (or use fedbuff, "
                "which applies its buffer through the server optimiser)"
            )
        return None
    assert isinstance(mode, FedBuffConfig)
    f = getattr(rule, "f", 0)
    needed = {
        "krum": krum_min_updates(f),
        "multi_krum": max(krum_min_updates(f), getattr(rule, "m", None) or 0),
        "bulyan": bulyan_min_updates(f),
    }.get(rule.rule, 1)
    if mode.buffer_size < needed:
        return (
            f"robust.rule {rule.rule!r} needs at least {needed} updates per aggregation, but "
            f"fedbuff aggregates asynchrony.buffer_size = {mode.buffer_size}"
        )
    if cfg.training.min_sites > mode.buffer_size:
        return (
            f"training.min_sites ({cfg.training.min_sites}) exceeds asynchrony.buffer_size "
            f"({mode.buffer_size}): no buffer could ever be aggregated"
        )
    return None
