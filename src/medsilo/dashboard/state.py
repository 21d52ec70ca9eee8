"""What the dashboard shows: the public part of each round plus the noised site health.

:class:`DashboardState` turns raw round records into the JSON ``/api/state`` serves. Only
these round fields pass through as they are, being the coordinator's own figures: the round
number, the simulated clock, the global model's pooled-test accuracy and loss, total bytes
up and down, the training privacy budget (``privacy.epsilon`` of a DP run) and the number of
rejected updates. Everything per site (``site_health``) goes through
:class:`~medsilo.dashboard.release.HealthReleaser`; per-site evaluation, per-site bytes and
the mean training loss are left out (each would tell a site's raw value).
"""

from __future__ import annotations

import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from medsilo.dashboard.drift import DriftDetector, DriftPolicy
from medsilo.dashboard.reader import RunTail
from medsilo.dashboard.release import HealthReleaser, ReleasePolicy
from medsilo.dashboard.release_store import RELEASES, ReleaseStore

NORM_BINS = 10
DRIFT_METRICS = ("train_loss", "update_norm")


def _public_round(rec: dict[str, Any]) -> dict[str, Any]:
    test = rec.get("test") or {}
    privacy = rec.get("privacy") or {}
    metrics = rec.get("metrics") or {}
    lead = metrics.get("lead")
    return {
        "round": int(rec["round"]),
        "sim_clock_s": rec.get("sim_clock_s", rec.get("sim_time_s")),
        "accuracy": test.get("accuracy"),
        "loss": test.get("loss"),
        "bytes_up": rec.get("bytes_up"),
        "bytes_down": rec.get("bytes_down"),
        "epsilon_training": privacy.get("epsilon"),
        "rejected": len(rec.get("rejected") or []),
        # the global model's lead clinical metric, pooled over the sites' test sets (an
        # aggregate like the pooled accuracy: no site's own value)
        "lead_metric": lead,
        "lead_value": (metrics.get("pooled") or {}).get(lead) if lead else None,
    }


class DashboardState:
    """Thread-safe: :meth:`snapshot` polls the run and returns the released state."""

    def __init__(
        self,
        run: Path,
        policy: ReleasePolicy | None = None,
        seed: int | None = None,
        drift: DriftPolicy | None = None,
    ) -> None:
        self.run = run
        self.policy = policy or ReleasePolicy()
        self._seed = seed
        self._drift_policy = drift or DriftPolicy()
        self._lock = threading.Lock()
        self._tail = RunTail(run)
        self._releaser: HealthReleaser | None = None
        self._reset()

    def _reset(self) -> None:
        """Forget what was built from the records (the releases stay: they are the run's)."""
        noise = {m: 2 * self.policy.scale(m) ** 2 for m in DRIFT_METRICS}
        self._drift = DriftDetector(self._drift_policy, noise)
        self._rounds: list[dict[str, Any]] = []
        self._sites: dict[str, list[dict[str, Any]]] = {}
        self._alerts: list[dict[str, Any]] = []

    def _releases(self) -> HealthReleaser:
        """The releaser whose store sits beside the followed ``rounds.jsonl`` (found by now)."""
        if self._releaser is None:
            assert self._tail.rounds_file is not None, "records come from a rounds file"
            store = ReleaseStore(self._tail.rounds_file.parent / RELEASES)
            store.load()
            self._releaser = HealthReleaser(self.policy, self._seed, store)
        return self._releaser

    def _ingest(self, rec: dict[str, Any]) -> None:
        rnd = int(rec["round"])
        self._rounds.append(_public_round(rec))
        for site, raw in sorted((rec.get("site_health") or {}).items()):
            released = self._releases().shown(rnd, site, raw)
            self._sites.setdefault(site, []).append({"round": rnd, **released})
            for metric in DRIFT_METRICS:
                value = released.get(metric)
                if value is None:
                    continue
                alert = self._drift.observe(site, metric, rnd, float(value))
                if alert is not None:
                    self._alerts.append(alert.as_dict())

    def _histogram(self) -> dict[str, Any]:
        """Released update norms per site over fixed bins on ``[0, norm_clip]`` (where
        :func:`~medsilo.dashboard.release.into_domain` put them)."""
        edges = np.linspace(0.0, self.policy.norm_clip, NORM_BINS + 1)
        counts = {}
        for site, rows in self._sites.items():
            norms = [r["update_norm"] for r in rows if r.get("update_norm") is not None]
            counts[site] = np.histogram(norms, bins=edges)[0].astype(int).tolist()
        return {"edges": [round(float(e), 4) for e in edges], "counts": counts}

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            records, restarted = self._tail.poll()
            if restarted:
                self._reset()
            for rec in records:
                self._ingest(rec.to_json())
            summary = self._tail.summary()
            spent = self._releaser.epsilon_spent() if self._releaser is not None else {}
            return {
                "run": str(self.run),
                "following": str(self._tail.rounds_file) if self._tail.rounds_file else None,
                "status": run_status(summary, bool(self._rounds)),
                "latest_round": self._rounds[-1]["round"] if self._rounds else 0,
                "rounds": list(self._rounds),
                "sites": {s: list(rows) for s, rows in self._sites.items()},
                "norm_histogram": self._histogram(),
                "alerts": list(self._alerts),
                "privacy": {**self.policy.describe(), "epsilon_spent_per_site": spent},
                "drift": asdict(self._drift_policy),
            }


def run_status(summary: dict[str, Any] | None, has_rounds: bool) -> str:
    """``done``, or ``stopped`` when the summary says the run did not finish (an interrupted
    run writes one, marked ``"complete": false``); before any summary ``running`` or
    ``waiting``."""
    if summary is not None:
        return "stopped" if summary.get("complete") is False else "done"
    return "running" if has_rounds else "waiting"
