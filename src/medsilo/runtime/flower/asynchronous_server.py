"""FedAsync and FedBuff over Flower: the engine's asynchronous coordinator, real messages.

The rules (which idle site gets a free slot, the model a task downloads, staleness,
FedAsync's mixing, FedBuff's buffer of ``K`` staleness-weighted updates, privacy, records,
evaluation) are :class:`~medsilo.runtime.asynchronous.AsyncCoordinator`, the very object the
in-process :class:`~medsilo.runtime.asynchronous.AsyncEngine` drives on its simulated event
queue. This module only drives it with Flower's :class:`Grid`: every free slot becomes a
``train`` message pushed at once with the current model (``Grid.push_messages``), and the
coordinator pulls replies (``Grid.pull_messages``) every ``poll_interval_s``; each update is
handed to the coordinator as it comes back, and its site is sent the then-current model
again. The ``round`` a task's message carries is its dispatch number, which seeds the site's
training exactly as the engine's ``site_update(task.number, ...)`` does.

Arrival order. Replies pulled together are handed over in the order of their simulated
arrival times (the clock of :class:`~medsilo.runtime.clock.SimClock`, from each dispatch's
simulated start, the model's bytes down, the site's examples and its update's bytes up; ties by
dispatch number), and a task dispatched while they are handed over starts (downloads the
model) before the first arrival with a later simulated time, as in the engine's event queue.
So whenever every reply of a batch of in-flight tasks is pulled together, the run takes the
engine's steps: the same sequence of (site, model version) is applied and the final model is
the engine's (``tests/runtime/flower/test_asynchronous_flower.py``). When replies trickle in
one by one (a real deployment), the real order decides: that is the point of asynchrony, and
a different order gives a different, equally valid, model. Records keep the engine's
``sim_clock_s`` (simulated arrival times, never decreasing), and ``wall_s`` is real.

Failures: a site whose task fails or is not back within the reply timeout is logged and gets
no further task (its slot goes to another idle site); when no site is left working the run
ends with ``stop_reason`` saying so. Not here: checkpoints and resume (an asynchronous run
has no round boundary to resume at: resuming one is refused), and the ledger head on each
``train`` message (sites witness the run's final head only).
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from flwr.app import Message, MessageType
from flwr.serverapp import Grid

from medsilo.runtime.asynchronous import AsyncCoordinator, AsyncTask
from medsilo.runtime.clock import SimClock
from medsilo.runtime.flower import records as rec
from medsilo.runtime.flower.errors import FlowerRunError
from medsilo.runtime.records import broadcast_bytes, update_bytes
from medsilo.runtime.round_record import RoundCallback
from medsilo.types import Weights

log = logging.getLogger(__name__)

#: How often replies are pulled when no poll interval is set (Flower's own 3 s).
DEFAULT_POLL_S = 3.0


class AsyncSites(Protocol):
    """What the driver needs of the Flower transport (``FlowerSites``)."""

    nodes: dict[str, int]
    clock: SimClock


class FlowerAsyncDriver:
    """Drives an :class:`AsyncCoordinator` with push/pull messages (module docstring).

    ``tolerant``: a site that fails or stays silent past ``reply_timeout_s`` is logged and
    gets no further task (else the run ends with :class:`FlowerRunError`)."""

    def __init__(
        self,
        core: AsyncCoordinator,
        sites: AsyncSites,
        grid: Grid,
        reply_timeout_s: float | None,
        poll_interval_s: float | None,
        tolerant: bool,
    ) -> None:
        self.core = core
        self.sites = sites
        self.grid = grid
        self.reply_timeout_s = reply_timeout_s
        self.poll_s = DEFAULT_POLL_S if poll_interval_s is None else poll_interval_s
        self.tolerant = tolerant
        #: message id -> (task, when it was pushed: time.monotonic())
        self.in_flight: dict[str, tuple[AsyncTask, float]] = {}
        #: dispatched, not yet pushed: they start before the next later arrival
        self.queued: list[AsyncTask] = []
        self.down: dict[int, int] = {}  # bytes each started task downloaded
        self.now = 0.0  # simulated seconds of the latest arrival handed over
        self.lost: list[str] = []  # sites that failed or timed out: no further task

    def _start_queued(self, before_s: float | None) -> None:
        """Push the queued tasks dispatched before ``before_s`` (all with ``None``)."""
        ready = [t for t in self.queued if before_s is None or t.dispatched_s < before_s]
        if not ready:
            return
        self.queued = [t for t in self.queued if t not in ready]
        messages = []
        for task in ready:
            weights, payload = self.core.start(task)
            content = rec.broadcast_content(task.number, weights, payload)
            self.down[task.number] = broadcast_bytes(weights, payload)
            messages.append(
                Message(
                    content,
                    dst_node_id=self.sites.nodes[task.site],
                    message_type=MessageType.TRAIN,
                    group_id=f"async-{task.number}",
                )
            )
        ids = list(self.grid.push_messages(messages))
        pushed = time.monotonic()
        for mid, task in zip(ids, ready, strict=True):
            self.in_flight[mid] = (task, pushed)

    def _dispatch(self, idle: list[str], now: float) -> None:
        task = self.core.dispatch(idle, now)
        self.queued += ([task] if task is not None else []) + self.core.unpark(idle, now)

    def _arrival_s(self, task: AsyncTask) -> float:
        """The update's simulated arrival: the engine's clock for the same dispatch."""
        assert task.update is not None
        clock = self.sites.clock
        timing = clock.dispatch(
            task.site,
            task.dispatched_s,
            self.down[task.number],
            clock.examples(task.update),
            update_bytes(task.update),
        )
        return timing.arrival_s

    def _collect(self) -> list[AsyncTask]:
        """The tasks whose replies are back (failed and timed-out tasks are given up)."""
        arrived = []
        for reply in self.grid.pull_messages(list(self.in_flight)):
            task, _ = self.in_flight.pop(reply.metadata.reply_to_message_id)
            if reply.has_error():
                self._lose(task, f"failed: {reply.error.reason}")
                continue
            update = rec.content_to_update(reply.content)
            if update.site != task.site:
                raise FlowerRunError(
                    f"task {task.number}: node of site {task.site!r} answered as {update.site!r}"
                )
            task.update = update
            arrived.append(task)
        if self.reply_timeout_s is not None:
            now = time.monotonic()
            for mid, (task, pushed) in list(self.in_flight.items()):
                if now - pushed > self.reply_timeout_s:
                    del self.in_flight[mid]
                    self._lose(task, f"did not reply within {self.reply_timeout_s}s")
        return arrived

    def _lose(self, task: AsyncTask, why: str) -> None:
        if not self.tolerant:
            raise FlowerRunError(f"task {task.number} (site {task.site!r}) {why}")
        log.warning("task %d: site %r %s; it gets no further task", task.number, task.site, why)
        self.lost.append(task.site)

    def run(self) -> str:
        """Run until the coordinator has its updates (or no site is left); the stop reason."""
        core = self.core
        idle = [s for s in core.names if s in self.sites.nodes]
        for _ in range(core.concurrency):
            self._dispatch(idle, 0.0)
        self._start_queued(None)
        while True:
            if not self.in_flight and not self.queued:
                if core.retired:
                    return core.budget_reason()
                return f"no site is left working (lost: {sorted(set(self.lost))})"
            arrived = self._collect()
            if not arrived:
                time.sleep(self.poll_s)
                continue
            for (arrival_s, _), task in sorted(
                ((self._arrival_s(t), t.number), t) for t in arrived
            ):
                limit_s = core.mode.max_sim_time_s
                if limit_s is not None and arrival_s > limit_s:
                    return "max_sim_time_s"
                self._start_queued(arrival_s)
                self.now = max(self.now, arrival_s)
                core.arrive(task, self.now)
                if core.done:
                    return "updates"
                idle.append(task.site)
                self._dispatch(idle, self.now)
            self._start_queued(None)


def run_async(
    core: AsyncCoordinator,
    sites: AsyncSites,
    grid: Grid,
    on_round: RoundCallback,
    reply_timeout_s: float | None,
    poll_interval_s: float | None,
    tolerant: bool,
) -> Weights:
    """The whole asynchronous run over identified ``sites``; the final weights (each
    aggregation's record went to ``on_round``)."""
    core.begin(on_round)
    driver = FlowerAsyncDriver(core, sites, grid, reply_timeout_s, poll_interval_s, tolerant)
    reason = driver.run()
    core.finish(reason, driver.now)
    return core.model.weights
