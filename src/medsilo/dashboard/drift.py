"""Drift alerts: a site's released health moving away from its own history.

For each site and metric (released loss, released update norm) an exponentially weighted
mean ``m`` and variance ``v`` track the history (``alpha`` = 0.1). A new value ``x`` is
scored before it joins the history::

    z = (x - m) / sqrt(v + noise_var)

``noise_var`` is the variance of the release noise (``2 b**2`` for Laplace scale ``b``): the
values are noised, so a jump smaller than the noise is no evidence of drift, and the floor
keeps ``z`` sane while ``v`` is still tiny; ``v`` is divided by ``1 - (1 - alpha)**u``
after ``u`` updates, the usual bias correction of an average started at zero. Then
``m += alpha * (x - m)`` and ``v = (1 - alpha) * (v + alpha * (x - m_old)**2)``.
No alert during the first ``warmup`` (5) values; an alert fires when
``|z| > threshold`` (3.0) for ``consecutive`` (2) rounds in a row, so one noisy outlier
does not raise it. Outlying values do not join
the history while a streak builds (else a shift would inflate ``v`` and hide itself); once
an alert fires the current value becomes the new baseline mean, so a lasting shift alerts
once and then is the site's new normal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DriftPolicy:
    alpha: float = 0.1
    threshold: float = 3.0
    consecutive: int = 2
    warmup: int = 5


@dataclass
class DriftAlert:
    site: str
    metric: str
    round: int
    value: float
    expected: float
    z: float

    def as_dict(self) -> dict[str, str | int | float]:
        return {
            "site": self.site,
            "metric": self.metric,
            "round": self.round,
            "value": round(self.value, 4),
            "expected": round(self.expected, 4),
            "z": round(self.z, 2),
        }


@dataclass
class _Track:
    mean: float = 0.0
    var: float = 0.0
    seen: int = 0
    updates: int = 0
    streak: int = 0


@dataclass
class DriftDetector:
    """One EWMA z-score track per (site, metric)."""

    policy: DriftPolicy = field(default_factory=DriftPolicy)
    noise_var: dict[str, float] = field(default_factory=dict)
    _tracks: dict[tuple[str, str], _Track] = field(default_factory=dict)

    def observe(self, site: str, metric: str, rnd: int, value: float) -> DriftAlert | None:
        t = self._tracks.setdefault((site, metric), _Track())
        p = self.policy
        alert = None
        if t.seen == 0:
            t.mean = value
        else:
            var = t.var / (1 - (1 - p.alpha) ** t.updates) if t.updates else 0.0
            z = (value - t.mean) / math.sqrt(var + self.noise_var.get(metric, 0.0) + 1e-12)
            outlying = t.seen >= p.warmup and abs(z) > p.threshold
            t.streak = t.streak + 1 if outlying else 0
            if t.streak >= p.consecutive:
                alert = DriftAlert(site, metric, rnd, value, t.mean, z)
                t.mean, t.streak = value, 0  # alerted: the new level is the new baseline
            elif not outlying:
                diff = value - t.mean
                t.mean += p.alpha * diff
                t.var = (1 - p.alpha) * (t.var + p.alpha * diff * diff)
                t.updates += 1
        t.seen += 1
        return alert
