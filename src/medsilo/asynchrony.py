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

Which combinations are refused is checked by :func:`medsilo.config.asynchrony_problem` and,
for what each algorithm allows, by its capabilities
(:attr:`~medsilo.algorithms.capabilities.Capabilities.asynchrony_unsound`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

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
