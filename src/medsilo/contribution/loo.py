"""Exact leave-one-out contribution: retrain the federation without each site.

    LOO_i = metric(w_N) - metric(w_{N minus i})

both measured on the *full* federation's pooled test set (not the reduced federation's, so
the two models are compared on the same patients). ``w_{N minus i}`` comes from
:func:`medsilo.runtime.simulation.run_federation` with the same config and seed on
:meth:`FederatedData.without` (the site's override in ``sites:`` dropped too); the initial
model is identical because it is built from ``cfg.seed`` and the input shape only.

Caveat, random streams: a site's training stream is ``site_seed(seed, round, site index)``
(also its data-poisoning, attack and codec streams, and the cohort sampler draws indices), so
removing site ``i`` shifts the index, and hence the random stream, of every site after it.
The difference therefore mixes site ``i``'s contribution with seed noise in the remaining
sites' minibatch order; on small data that noise can be of the same order as a small LOO
score (docs/contribution.md measures it). Federated standardisation statistics were
computed on all sites when the data was built and are kept, so site ``i`` still influences
the scaling of the features; that is a deliberate choice (the deployed scaler is shared).

Cost: one full training run per site.
"""

from __future__ import annotations

from collections.abc import Callable

from medsilo.config import RunConfig
from medsilo.contribution.metric import Metric, Validator
from medsilo.data.base import FederatedData
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.round_record import RoundRecord
from medsilo.runtime.simulation import run_federation
from medsilo.training.site_samples import samples_of


def config_without(cfg: RunConfig, site: str) -> RunConfig:
    """``cfg`` for the federation without ``site`` (its per-site override, attacker role and
    governance entries removed)."""
    update: dict[str, object] = {
        "sites": cfg.sites.without(site),
        "governance": cfg.governance.without(site),
    }
    if cfg.attack is not None and site in cfg.attack.sites:
        rest = [s for s in cfg.attack.sites if s != site]
        update["attack"] = cfg.attack.model_copy(update={"sites": rest}) if rest else None
    return cfg.model_copy(update=update)


def leave_one_out(
    cfg: RunConfig,
    fed: FederatedData,
    full_metric: float,
    metric: Metric,
    on_round: Callable[[str, RoundRecord], None] | None = None,
) -> dict[str, dict[str, float]]:
    """``{site: {"without": metric(w_{N-i}), "score": full_metric - that}}`` per site."""
    if cfg.algorithm.name == "local":
        raise ValueError("leave-one-out needs a shared model; 'local' has none")
    if len(fed.sites) < 2:
        raise ValueError("leave-one-out needs at least two sites")
    validation = samples_of(fed.test, fed.task)
    out: dict[str, dict[str, float]] = {}
    for site in fed.site_names:
        reduced = config_without(cfg, site)
        prep = PreparedFederation.build(reduced, fed.without(site))

        def forward(record: RoundRecord, site: str = site) -> None:
            if on_round is not None:
                on_round(site, record)

        result = run_federation(reduced, prepared=prep, on_round=forward)
        without = Validator(prep.model, validation, metric)(result.weights)
        out[site] = {"without": without, "score": full_metric - without}
    return out
