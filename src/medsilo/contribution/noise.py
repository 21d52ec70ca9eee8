"""How much of a leave-one-out score is random-stream noise: the site-order noise floor.

A site's random streams (minibatch order, poisoning, codec) are keyed by its *index* in the
federation (``site_seed(seed, round, index)``), so leave-one-out, which removes a site and
shifts the indices of the sites after it, changes the other sites' streams as well as their
company. Re-running the *full* federation with its sites in other orders (cyclic rotations)
changes only that mapping, with the same data, config and seed, so the spread of the metric
across orders measures the noise that comes with any retraining. A leave-one-out score
smaller than that spread cannot be told apart from noise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from medsilo.config import RunConfig
from medsilo.contribution.metric import Metric, Validator
from medsilo.data.base import FederatedData
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.round_record import RoundRecord
from medsilo.runtime.simulation import run_federation


def rotated(fed: FederatedData, shift: int) -> FederatedData:
    """``fed`` with its site list rotated by ``shift`` (same data, same pooled test set)."""
    k = shift % len(fed.sites)
    sites = fed.sites[k:] + fed.sites[:k]
    return FederatedData(fed.name, sites, fed.test, fed.num_classes, fed.task)


def site_order_noise(
    cfg: RunConfig,
    fed: FederatedData,
    metric: Metric,
    orders: int,
    on_round: Callable[[str, RoundRecord], None] | None = None,
) -> dict[str, float | list[float]]:
    """The metric of the full federation under ``orders`` site orders (rotations 0, 1, ...).

    Returns the per-order values, their standard deviation (ddof=1) and range.
    """
    if orders < 2:
        raise ValueError("the noise floor needs at least two site orders")
    if orders > len(fed.sites):
        raise ValueError(f"only {len(fed.sites)} distinct rotations of {len(fed.sites)} sites")
    values: list[float] = []
    for shift in range(orders):
        prep = PreparedFederation.build(cfg, rotated(fed, shift))

        def forward(record: RoundRecord, shift: int = shift) -> None:
            if on_round is not None:
                on_round(f"rotation {shift}", record)

        result = run_federation(cfg, prepared=prep, on_round=forward)
        values.append(Validator(prep.model, prep.pooled_test, metric)(result.weights))
    return {
        "values": values,
        "std": float(np.std(values, ddof=1)),
        "range": float(max(values) - min(values)),
    }
