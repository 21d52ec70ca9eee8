"""The simulated clock: when each site's update arrives, and how long a round lasts.

Built on :mod:`medsilo.network` (the one timing model). One *dispatch* of a site (it
downloads the model, trains, uploads its update) costs

    busy = transfer(bytes_down, down) + slowdown * examples / examples_per_s
           + transfer(bytes_up, up)

seconds of work, laid out over the site's availability windows from the moment it is
dispatched (:func:`medsilo.network.finish_time`). ``examples`` is what the site actually
trained on: local steps x ``min(batch_size, its examples)``; ``bytes_up`` is the exact
encoded update it sent.

Whether a dispatch drops out (never returns) is drawn from a generator seeded by
``(run seed, key, site index)``, where ``key`` is the round (synchronous) or the dispatch
number (asynchronous), so the clock is deterministic for a seed.

A synchronous round (:meth:`SimClock.sync_round`) that starts at ``t`` ends when the last
sampled site's update arrives, if every one arrives by ``t + round_timeout_s``; otherwise
(a site dropped out, or is later than the timeout) the coordinator stops waiting at the
timeout and aggregates the updates that arrived by then. A dropped or late site therefore
costs at most one timeout and never stalls the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medsilo.config import RunConfig, SiteRecord
from medsilo.network import compute_seconds, finish_time, next_available, transfer_seconds
from medsilo.types import Update

DROPOUT_TAG = 0xD809


@dataclass(frozen=True)
class Dispatch:
    """The timing of one site's work on one model version."""

    site: str
    start_s: float
    busy_s: float
    compute_s: float
    arrival_s: float


@dataclass(frozen=True)
class RoundTiming:
    """A synchronous round on the simulated clock."""

    start_s: float
    end_s: float
    on_time: list[str]
    late: list[str]
    dropped: list[str]
    dispatches: dict[str, Dispatch]

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def fields(self) -> dict[str, Any]:
        """Round-record keys: ``sim_time_s`` (this round), ``sim_clock_s`` (since the start),
        ``sim_compute_s`` (slowest site's local work), ``dropped`` and ``late`` sites."""
        return {
            "sim_time_s": self.duration_s,
            "sim_clock_s": self.end_s,
            "sim_compute_s": max((d.compute_s for d in self.dispatches.values()), default=0.0),
            "dropped": list(self.dropped),
            "late": list(self.late),
        }


class SimClock:
    """Per-site timing and dropout draws for a federation (see the module docstring)."""

    def __init__(
        self,
        seed: int,
        site_names: Sequence[str],
        records: Mapping[str, SiteRecord],
        batch_size: int,
    ) -> None:
        self.seed = seed
        self.names = list(site_names)
        self.records = dict(records)
        self.batch_size = batch_size

    def drops(self, key: int, site: str) -> bool:
        """Whether ``site``'s dispatch ``key`` never returns (seeded, reproducible)."""
        p = self.records[site].availability.dropout
        if p <= 0.0:
            return False
        if p >= 1.0:
            return True
        rng = np.random.default_rng([self.seed, key, self.names.index(site), DROPOUT_TAG])
        return bool(rng.random() < p)

    def dropped(self, key: int, sites: Sequence[str]) -> list[str]:
        return [s for s in sites if self.drops(key, s)]

    def examples(self, update: Update) -> int:
        """Training examples the site processed for ``update`` (steps x effective batch)."""
        return update.num_steps * min(self.batch_size, max(update.num_examples, 1))

    def available_from(self, site: str, t: float) -> float:
        return next_available(t, self.records[site].availability)

    def dispatch(
        self, site: str, start_s: float, bytes_down: int, examples: int, bytes_up: int
    ) -> Dispatch:
        """When ``site``, dispatched at ``start_s``, delivers its update."""
        rec = self.records[site]
        compute = compute_seconds(examples, rec.compute)
        busy = (
            transfer_seconds(bytes_down, rec.network, "down")
            + compute
            + transfer_seconds(bytes_up, rec.network, "up")
        )
        arrival = finish_time(start_s, busy, rec.availability)
        return Dispatch(site, start_s, busy, compute, arrival)

    def sync_round(
        self,
        start_s: float,
        sites: Sequence[str],
        dropped: Sequence[str],
        bytes_down: int,
        bytes_up: Mapping[str, int],
        examples: Mapping[str, int],
        timeout_s: float,
    ) -> RoundTiming:
        """The round's timing; ``bytes_up`` and ``examples`` cover every site not dropped."""
        dispatches = {
            s: self.dispatch(s, start_s, bytes_down, examples[s], bytes_up[s])
            for s in sites
            if s not in dropped
        }
        deadline = start_s + timeout_s
        on_time = [s for s in sites if s in dispatches and dispatches[s].arrival_s <= deadline]
        late = [s for s in sites if s in dispatches and s not in on_time]
        if len(on_time) == len(sites):
            end = max((d.arrival_s for d in dispatches.values()), default=start_s)
        else:
            end = deadline
        return RoundTiming(start_s, end, on_time, late, list(dropped), dispatches)


def flower_clock_problem(cfg: RunConfig) -> str | None:
    """Why the Flower runtime cannot run ``cfg``'s clock settings, or ``None``.

    The Flower ServerApp also runs real deployments, where sites drop out or go offline for
    real: it charges simulated compute and communication time like the engine (synchronous
    rounds and FedAsync/FedBuff alike), but refuses simulated dropouts or availability windows.
    """
    sites = cfg.sites
    records = [("default", sites.default)] + [
        (name, sites.record(name)) for name in sorted(sites.overrides)
    ]
    for name, rec in records:
        av = rec.availability
        if av.dropout > 0 or not av.always:
            return (
                f"sites {name!r} simulates dropouts or availability windows, which only the "
                "in-process engine simulates; under Flower, sites drop out for real"
            )
    return None
