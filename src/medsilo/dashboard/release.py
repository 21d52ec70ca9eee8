"""Differentially private release of each site's health for the dashboard.

The coordinator holds each site's raw round health (``site_health`` in the round record:
local ``train_loss``, L2 ``update_norm`` of its delta, ``num_examples``). The dashboard never
shows those; it shows a release made here once per (round, site) and stored with the run
(:mod:`medsilo.dashboard.release_store`), so neither polling the page again nor restarting
the dashboard draws fresh noise that could be averaged away.

Mechanism: Laplace, ``x + Lap(b)`` with ``b = sensitivity / epsilon_q``; the release budget
``epsilon`` (``--epsilon``, default 10) is split evenly over the three quantities
(``epsilon_q = epsilon / 3``), so each (round, site) release is ``epsilon``-DP by basic
composition. Sensitivities:

* loss: clipped to ``[0, loss_clip]`` (default 2); a site's value may change to any value in
  that range, so ``sensitivity = loss_clip`` (a site-level guarantee);
* update norm: clipped to ``[0, norm_clip]`` (default 2; set it to the
  run's update clipping norm where it has one), ``sensitivity = norm_clip``;
* sample count: adding or removing one patient changes it by 1, ``sensitivity = 1``
  (a patient-level guarantee); released rounded to an integer, never below zero.

Sites hold disjoint data, so releases of different sites compose in parallel; rounds compose
sequentially: after ``T`` rounds a site's dashboard budget is ``T * epsilon`` (shown on the
page), summed over every release stored with the run, so restarts are accounted for too.
Rounding, clamping into ``[0, clip]`` (no negative norm or loss is shown) and the norm
histogram are post-processing of the released values and cost nothing more.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from medsilo.dashboard.release_store import Released, ReleaseStore

QUANTITIES = ("train_loss", "update_norm", "num_examples")


@dataclass(frozen=True)
class ReleasePolicy:
    epsilon: float = 10.0
    loss_clip: float = 2.0
    norm_clip: float = 2.0

    def __post_init__(self) -> None:
        for name in ("epsilon", "loss_clip", "norm_clip"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    @property
    def epsilon_each(self) -> float:
        return self.epsilon / len(QUANTITIES)

    def sensitivity(self, quantity: str) -> float:
        return {"train_loss": self.loss_clip, "update_norm": self.norm_clip}.get(quantity, 1.0)

    def scale(self, quantity: str) -> float:
        """Laplace scale ``b = sensitivity / (epsilon / 3)``; noise std is ``sqrt(2) * b``."""
        return self.sensitivity(quantity) / self.epsilon_each

    def describe(self) -> dict[str, Any]:
        return {
            "mechanism": "laplace",
            "epsilon_per_release": self.epsilon,
            "epsilon_per_quantity": self.epsilon_each,
            "clip": {"train_loss": self.loss_clip, "update_norm": self.norm_clip},
            "laplace_scale": {q: self.scale(q) for q in QUANTITIES},
        }


class HealthReleaser:
    """Releases each (round, site) once with Laplace noise from a seeded generator.

    Releases live in a :class:`~medsilo.dashboard.release_store.ReleaseStore`; given one on
    disk, they outlive the process, so restarting the dashboard shows the same numbers.
    """

    def __init__(
        self, policy: ReleasePolicy, seed: int | None = None, store: ReleaseStore | None = None
    ) -> None:
        self.policy = policy
        self.store = store or ReleaseStore()
        self._seed = seed
        self._entropy = np.random.default_rng()  # when no seed: fresh OS entropy

    def release(self, rnd: int, site: str, raw: dict[str, Any]) -> Released:
        """The mechanism's output for this (round, site): unbiased, possibly out of range."""
        return self.store.get_or_draw(
            rnd, site, raw, self.policy.epsilon, lambda: self._noised(raw, self._rng_for(rnd, site))
        )

    def _rng_for(self, rnd: int, site: str) -> np.random.Generator:
        """With a seed, one generator per (round, site): a restarted dashboard with the same
        seed never reuses one release's noise for another (a shared stream restarted would)."""
        if self._seed is None:
            return self._entropy
        site_key = int(hashlib.sha256(site.encode("utf-8")).hexdigest()[:15], 16)
        return np.random.default_rng([self._seed, rnd, site_key])

    def shown(self, rnd: int, site: str, raw: dict[str, Any]) -> Released:
        """The release moved into each quantity's domain, as the page shows it."""
        return into_domain(self.release(rnd, site, raw), self.policy)

    def _noised(self, raw: dict[str, Any], rng: np.random.Generator) -> Released:
        p = self.policy
        out: Released = {}
        for quantity, upper in (("train_loss", p.loss_clip), ("update_norm", p.norm_clip)):
            value = raw.get(quantity)
            if value is None or not np.isfinite(value):
                out[quantity] = None
                continue
            clipped = float(np.clip(value, 0.0, upper))
            out[quantity] = clipped + float(rng.laplace(0.0, p.scale(quantity)))
        count = raw.get("num_examples")
        if count is None:
            out["num_examples"] = None
        else:
            out["num_examples"] = float(count) + float(rng.laplace(0.0, p.scale("num_examples")))
        return out

    def epsilon_spent(self) -> dict[str, float]:
        return self.store.epsilon_spent()


def into_domain(released: Released, policy: ReleasePolicy) -> Released:
    """Post-process a release into what it can be: free under DP, and no negative norms.

    Loss and norm are clamped to the clipping range ``[0, clip]`` the mechanism was applied
    to and rounded to 4 decimals; the count is rounded to an integer, at least 0.
    """
    out: Released = {}
    for quantity, upper in (("train_loss", policy.loss_clip), ("update_norm", policy.norm_clip)):
        value = released.get(quantity)
        out[quantity] = None if value is None else round(float(np.clip(value, 0.0, upper)), 4)
    count = released.get("num_examples")
    out["num_examples"] = None if count is None else max(0, round(float(count)))
    return out
