"""Differentially private release of each site's health for the dashboard.

The coordinator holds each site's raw round health (``site_health`` in the round record:
local ``train_loss``, L2 ``update_norm`` of its delta, ``num_examples``). The dashboard never
shows those; it shows a release made here once per (round, site) and cached, so polling the
page again draws no fresh noise that could be averaged away.

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
page). Rounding, clipping to the range and the norm histogram are post-processing of the
released values and cost nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

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
    """Releases each (round, site) once with Laplace noise from a seeded generator."""

    def __init__(self, policy: ReleasePolicy, seed: int | None = None) -> None:
        self.policy = policy
        self._rng = np.random.default_rng(seed)  # None: fresh OS entropy
        self._released: dict[tuple[int, str], dict[str, float | int | None]] = {}

    def release(self, rnd: int, site: str, raw: dict[str, Any]) -> dict[str, float | int | None]:
        key = (rnd, site)
        if key not in self._released:
            self._released[key] = self._noised(raw)
        return self._released[key]

    def _noised(self, raw: dict[str, Any]) -> dict[str, float | int | None]:
        p = self.policy
        out: dict[str, float | int | None] = {}
        for quantity, upper in (("train_loss", p.loss_clip), ("update_norm", p.norm_clip)):
            value = raw.get(quantity)
            if value is None or not np.isfinite(value):
                out[quantity] = None
                continue
            clipped = float(np.clip(value, 0.0, upper))
            noisy = clipped + self._rng.laplace(0.0, p.scale(quantity))
            out[quantity] = round(float(noisy), 4)
        count = raw.get("num_examples")
        if count is None:
            out["num_examples"] = None
        else:
            noisy_count = float(count) + self._rng.laplace(0.0, p.scale("num_examples"))
            out["num_examples"] = max(0, round(noisy_count))
        return out

    def releases_of(self, site: str) -> int:
        return sum(1 for _, s in self._released if s == site)
