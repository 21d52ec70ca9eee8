"""The coordinator's privacy accounting: epsilon per round and the budget stop.

(Not the run's audit ledger, :mod:`medsilo.ledger`: this only accounts epsilon.) One copy
for both runtimes (the in-process engine and the Flower ServerApp call
:meth:`PrivacyAccounting.close_round` at the same point of a round), so their round records,
``privacy`` key included, stay identical.

* client-level DP (``dp_fedavg`` or ``privacy.client_dp`` around any algorithm): after
  ``r`` rounds, ``epsilon(z, q = cohort / num_sites, r)``
  (:mod:`medsilo.privacy.accountant`); every round counts, skipped or not (the sites
  trained and sent).
* sample-level DP-SGD: each site that trained in a round adds ``steps_per_round`` releases
  of ``PoissonSampled(batch / n_site, Gaussian(sigma_site))``; the record lists every
  site's epsilon and the federation's (the maximum: sites hold disjoint examples).

Budget (``privacy.target_epsilon``): at the end of round ``r`` the ledger computes the
epsilon that round ``r + 1`` (with the sites it would sample) would reach; if that exceeds
the budget, round ``r`` is the last one: it is evaluated, its record gets
``stop_reason``, and the run ends cleanly with the model of round ``r``. If even round 1
would exceed the budget, :class:`PrivacyBudgetError` is raised before any training.

Asynchronous runs (FedAsync / FedBuff, :mod:`medsilo.runtime.asynchronous`) have no rounds;
the engine accounts *releases* per site instead (:meth:`PrivacyAccounting.count_release`):

* DP-SGD: one release = one local training (``steps`` Poisson-sampled Gaussian steps),
  counted when the training starts (or at dispatch for a dispatch that drops out: the
  coordinator cannot tell whether such a site trained), not when its update arrives, so
  trainings still in flight when the run stops are paid for.
* client-level DP (FedBuff only): one release = one buffer aggregation the site's clipped update
  was averaged into (noise ``z C / K``, each site at most once per buffer), accounted with
  ``q = 1``: which sites land in a buffer depends on timing, not on a random sample, so
  there is no amplification by sampling.

A site whose next release would take its epsilon above the budget is not dispatched again
(:meth:`PrivacyAccounting.can_release`); the engine ends when no site can train any more.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

from medsilo.algorithms.base import Algorithm, ServerState
from medsilo.asynchrony import FedBuffConfig, SyncConfig
from medsilo.config import ConfigError, RunConfig
from medsilo.privacy.accountant import calibrate_noise_multiplier, epsilon
from medsilo.privacy.client_dp import ClientDP
from medsilo.privacy.dp_sgd import DPSGDPlan, dp_sgd_plan
from medsilo.runtime.cohorts import cohort_size

log = logging.getLogger(__name__)

Sampler = Callable[[int], list[str]]


class PrivacyBudgetError(ConfigError):
    """The budget does not allow even one round (raised before any training)."""


def planned_cohort(cfg: RunConfig, num_sites: int) -> int:
    return cohort_size(num_sites, cfg.training.fraction, cfg.training.min_sites)


def client_sampling_rate(cfg: RunConfig, num_sites: int) -> float:
    """``q = cohort / num_sites`` (fixed-size cohorts, accounted as Poisson: see accountant);
    1 in asynchronous runs, whose arrivals are not a random sample (no amplification)."""
    if not isinstance(cfg.asynchrony, SyncConfig):
        return 1.0
    return planned_cohort(cfg, num_sites) / num_sites


def noise_group(cfg: RunConfig, num_sites: int) -> int:
    """How many clipped updates client-level DP averages per release: the cohort, or
    FedBuff's K."""
    if isinstance(cfg.asynchrony, FedBuffConfig):
        return cfg.asynchrony.buffer_size
    return planned_cohort(cfg, num_sites)


def client_dp_noise(cfg: RunConfig, num_sites: int) -> float:
    """Client-level DP's noise multiplier, calibrated to the budget over the planned rounds
    for ``noise_multiplier: auto``."""
    client = cfg.client_dp()
    assert client is not None
    if client.noise_multiplier != "auto":
        return client.noise_multiplier
    target = cfg.privacy.target_epsilon
    assert target is not None  # config validation requires it with 'auto'
    q = client_sampling_rate(cfg, num_sites)
    return calibrate_noise_multiplier(target, q, cfg.training.rounds, cfg.privacy.delta)


class PrivacyAccounting:
    """Tracks what each round released and what the next one would cost."""

    def __init__(self, cfg: RunConfig, algorithm: Algorithm, site_sizes: Mapping[str, int]) -> None:
        self.delta = cfg.privacy.delta
        self.budget = cfg.privacy.target_epsilon
        self.asynchronous = not isinstance(cfg.asynchrony, SyncConfig)
        self.rounds_done = 0
        self.trained = {site: 0 for site in site_sizes}
        self.client_dp = algorithm if isinstance(algorithm, ClientDP) else None
        self.q_client = client_sampling_rate(cfg, len(site_sizes))
        self.plan = dp_sgd_plan(cfg.privacy, cfg.training.rounds)
        local = cfg.training.local()
        self.site_q = {
            s: DPSGDPlan.sampling_rate(n, local.batch_size) for s, n in site_sizes.items()
        }
        self.site_steps = {s: local.steps_for(n) for s, n in site_sizes.items()}
        self.site_sigma = (
            {
                s: self.plan.sigma(n, local.batch_size, self.site_steps[s])
                for s, n in site_sizes.items()
            }
            if self.plan is not None
            else {}
        )

    @staticmethod
    def build(
        cfg: RunConfig, algorithm: Algorithm, site_sizes: Mapping[str, int]
    ) -> PrivacyAccounting | None:
        """A ledger when the run has a DP mechanism, else ``None``."""
        if not isinstance(algorithm, ClientDP) and cfg.privacy.dp_sgd is None:
            return None
        return PrivacyAccounting(cfg, algorithm, site_sizes)

    # --- checkpoint -----------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What a checkpoint must hold for a resumed run to account exactly as the
        uninterrupted one: the releases counted so far (everything else is recomputed from
        the config and the sites' sizes, deterministically)."""
        return {"rounds_done": self.rounds_done, "trained": dict(self.trained)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a checkpoint's :meth:`state` (same roster: checked by the caller)."""
        trained = {str(s): int(k) for s, k in dict(state["trained"]).items()}
        if set(trained) != set(self.trained):
            raise ValueError(
                f"privacy state counts releases of sites {sorted(trained)}, the run has "
                f"{sorted(self.trained)}"
            )
        self.rounds_done = int(state["rounds_done"])
        self.trained = trained

    # --- accounting ---------------------------------------------------------------------

    def _site_epsilon(self, site: str, rounds: int) -> float:
        return epsilon(
            self.site_sigma[site], self.site_q[site], rounds * self.site_steps[site], self.delta
        )

    def epsilon(self, extra_rounds: int = 0, sites: list[str] | None = None) -> float:
        """Epsilon so far, or after ``extra_rounds`` more (DP-SGD: for ``sites``)."""
        if self.asynchronous:
            return max((self.site_epsilon(s, k) for s, k in self.trained.items()), default=0.0)
        if self.client_dp is not None:
            z = self.client_dp.noise_multiplier
            return epsilon(z, self.q_client, self.rounds_done + extra_rounds, self.delta)
        more = set(sites or [])
        return max(
            (
                self._site_epsilon(s, k + extra_rounds * (s in more))
                for s, k in self.trained.items()
            ),
            default=0.0,
        )

    # --- asynchronous runs: releases per site -------------------------------------------

    def site_epsilon(self, site: str, releases: int) -> float:
        """``site``'s epsilon after ``releases`` releases (see the module docstring)."""
        if self.client_dp is not None:
            z = self.client_dp.noise_multiplier
            return epsilon(z, self.q_client, releases, self.delta)
        return self._site_epsilon(site, releases)

    def can_release(self, site: str) -> bool:
        """Whether one more release of ``site`` stays within the budget."""
        return not self._exceeds(self.site_epsilon(site, self.trained[site] + 1))

    def count_release(self, site: str) -> None:
        self.trained[site] += 1

    def check_first_release(self) -> None:
        """Raise :class:`PrivacyBudgetError` when no site can afford even one release."""
        if any(self.can_release(s) for s in self.trained):
            return
        eps = min(self.site_epsilon(s, 1) for s in self.trained)
        raise PrivacyBudgetError(
            f"privacy budget: one release already costs epsilon {eps:.3f} > "
            f"privacy.target_epsilon {self.budget:g} (delta {self.delta:g}) at every site; "
            "raise the noise multiplier or the budget"
        )

    def annotate(self, record: dict[str, Any], server_state: ServerState) -> None:
        """Write ``record["privacy"]`` for the releases counted so far (asynchronous runs)."""
        record["privacy"] = self._fields(server_state)

    def _exceeds(self, eps: float) -> bool:
        return self.budget is not None and eps > self.budget

    def check_first_round(self, chosen: list[str]) -> None:
        eps = self.epsilon(1, chosen)
        if self._exceeds(eps):
            raise PrivacyBudgetError(
                f"privacy budget: one round already costs epsilon {eps:.3f} > "
                f"privacy.target_epsilon {self.budget:g} (delta {self.delta:g}); raise the "
                "noise multiplier or the budget"
            )

    # --- per round ----------------------------------------------------------------------

    def close_round(
        self,
        record: dict[str, Any],
        rnd: int,
        trained: list[str],
        server_state: ServerState,
        next_sites: Sampler,
        total_rounds: int,
    ) -> bool:
        """Account round ``rnd`` (``trained``: the sites that trained; ``server_state``: the
        state the round started from), write ``record["privacy"]``, and return whether the
        run must stop here because round ``rnd + 1`` would exceed the budget (then
        ``record["stop_reason"]`` says so)."""
        self.rounds_done += 1
        for site in trained:
            self.trained[site] += 1
        record["privacy"] = self._fields(server_state)
        if rnd >= total_rounds or self.budget is None:
            return False
        nxt = self.epsilon(1, next_sites(rnd + 1))
        if not self._exceeds(nxt):
            return False
        reason = (
            f"privacy budget: round {rnd + 1} would take epsilon to {nxt:.3f} > "
            f"privacy.target_epsilon {self.budget:g} (delta {self.delta:g}); stopped after "
            f"round {rnd} at epsilon {record['privacy']['epsilon']:.3f}"
        )
        log.warning(reason)
        record["stop_reason"] = reason
        return True

    def _fields(self, server_state: ServerState) -> dict[str, Any]:
        eps = self.epsilon()
        fields: dict[str, Any] = {"epsilon": eps, "delta": self.delta, "budget": self.budget}
        algo = self.client_dp
        if algo is not None:
            fields |= {
                "mechanism": "dp_fedavg",
                "unit": "site",
                "noise_multiplier": algo.noise_multiplier,
                "sampling_rate": self.q_client,
                "noise": algo.noise,
                "clip": algo.clip_of(server_state),
            }
            if self.asynchronous:
                fields["noise_group"] = algo.cohort  # FedBuff's K
                fields["per_site"] = {s: self.site_epsilon(s, k) for s, k in self.trained.items()}
                fields["releases_per_site"] = dict(self.trained)
            if algo.adaptive is not None:
                fields["update_noise_multiplier"] = algo.update_multiplier
            if algo.noise == "local" and algo.noise_multiplier > 0:
                # What one site's update alone is worth to a coordinator that sees it
                # (no secure aggregation): a 1/sqrt(m) share of the noise (of both the
                # update and, with adaptive clipping, the count: together z / sqrt(m)).
                alone = algo.noise_multiplier / math.sqrt(algo.cohort)
                fields["epsilon_single_update"] = epsilon(
                    alone, self.q_client, self.rounds_done, self.delta
                )
            return fields
        assert self.plan is not None
        if self.asynchronous:
            fields["releases_per_site"] = dict(self.trained)  # local trainings started
        return fields | {
            "mechanism": "dp_sgd",
            "unit": "example",
            "max_grad_norm": self.plan.max_grad_norm,
            "per_site": {s: self._site_epsilon(s, k) for s, k in self.trained.items()},
            "noise_multiplier_site": dict(self.site_sigma),
        }
