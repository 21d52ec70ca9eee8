"""The asynchronous engine: FedAsync and FedBuff on the simulated clock (docs/asynchronous.md).

An event queue orders site events by simulated time (ties by creation order, so a run is
deterministic for a seed). ``cohort_size(training.fraction)`` sites work at once:

1. *dispatch*: a free slot goes to an idle site chosen by a seeded generator (with every site
   in the cohort, the site that just finished). With probability ``availability.dropout``
   the dispatch never returns: the coordinator gives up after
   ``asynchrony.dispatch_timeout_s`` and hands the slot on, so such a site never blocks
   anyone;
2. *start*: at the site's next availability window it downloads the current model
   (version ``v0``), trains through the same :meth:`Algorithm.local_update` and
   :meth:`SiteSteps.upload` as the synchronous engine, and its update arrives after
   download + compute + upload seconds (:class:`~medsilo.runtime.clock.SimClock`);
3. *arrival*: staleness ``tau = version_now - v0``. FedAsync validates the update alone
   (:class:`CoordinatorSteps`, so decoding, validation and norm bounding are the
   synchronous ones) and mixes ``x <- x + a_t (x_v0 + delta - x)`` with
   ``a_t = alpha * s(tau)`` (:mod:`medsilo.aggregation.staleness`); FedBuff decodes the
   delta, scales it by ``1 / sqrt(1 + tau)`` and buffers it, and every ``buffer_size``
   updates runs :meth:`CoordinatorSteps.process` on the buffer and the server optimiser's
   step. Each server step is one *aggregation* and gets one record.

Records: ``round`` is the aggregation number (model version), ``sim_clock_s`` the simulated
time of the aggregation and ``sim_time_s`` the time since the previous one; ``staleness``
lists the staleness of every update applied, ``updates_received`` counts local trainings so
far. Privacy (docs/privacy.md, "Asynchronous runs"): with DP-SGD or client-level DP (FedBuff)
the :class:`~medsilo.privacy.accounting.PrivacyAccounting` counts each site's releases, every record
gets the ``privacy`` key, a site whose next release would exceed ``privacy.target_epsilon``
is not dispatched again (it retires), and the run ends once no site can train. Under
client-level DP a site whose update waits in the buffer is not dispatched until that buffer is
aggregated, so it contributes at most one update per buffer (the sensitivity the noise
``z C / K`` is calibrated to).

Evaluation runs whenever ``evaluation.every`` cohorts' worth of updates have been applied
since the last one (so an evaluation costs the same local work as in a synchronous run with
``evaluation.every``) and after the last aggregation.

Two halves, so that every runtime shares one copy of the asynchronous rules:
:class:`AsyncCoordinator` is the coordinator (which idle site gets a free slot, what model a
task downloads, staleness, FedAsync's mixing, FedBuff's buffer, privacy, records,
evaluation) and knows nothing of how tasks travel; :class:`AsyncEngine` drives it on the
simulated clock's event queue with the in-process sites, and
:mod:`medsilo.runtime.flower.asynchronous_server` drives the same coordinator with real
Flower messages (push, pull as replies arrive).
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from medsilo.aggregation.staleness import fedbuff_weight, staleness_weight
from medsilo.algorithms.base import Algorithm, SiteState
from medsilo.asynchrony import FedAsyncConfig, FedBuffConfig
from medsilo.config import ConfigError, RunConfig
from medsilo.models.weights import Layout
from medsilo.privacy.accounting import PrivacyAccounting
from medsilo.privacy.client_dp import ClientDP
from medsilo.runtime.clock import SimClock
from medsilo.runtime.cohorts import cohort_size
from medsilo.runtime.federation import FederationResult, GlobalModel
from medsilo.runtime.inprocess import InProcessSites
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.records import broadcast_bytes, model_hash_field, round_record, update_bytes
from medsilo.runtime.round_record import RoundCallback, RoundFields, RoundRecord
from medsilo.runtime.rounds import CoordinatorSteps, RoundOutcome
from medsilo.types import Update, Weights, add, subtract

log = logging.getLogger(__name__)

PICK_TAG = 0xA51C
#: Stop when this many dispatches in a row return nothing (every site keeps dropping out).
MAX_FRUITLESS_DISPATCHES_PER_SLOT = 100


@dataclass
class AsyncTask:
    """One dispatched piece of work: ``number`` (the dispatch count, which seeds the site's
    training as the round number does in a synchronous run), the site, and once started the
    model ``version`` and ``weights`` it downloaded; ``update`` once it arrived."""

    number: int
    site: str
    dispatched_s: float
    dropped: bool
    version: int = -1
    weights: Weights = field(default_factory=list)
    update: Update | None = None


@dataclass(order=True)
class _Event:
    time_s: float
    seq: int
    kind: str = field(compare=False)
    task: AsyncTask = field(compare=False)


#: ``(aggregation number, weights, last) -> evaluation fields`` of the record.
Evaluate = Callable[[int, Weights, bool], RoundFields]


class AsyncCoordinator:
    """The coordinator of a FedAsync / FedBuff run, whatever carries its tasks.

    A driver calls :meth:`begin`, then :meth:`dispatch` for each free slot (a site and a
    dispatch number), :meth:`start` when the task's site downloads the model (what it gets),
    :meth:`arrive` when its update is back (in the order the driver decides they arrived),
    and :meth:`finish`. The same :class:`CoordinatorSteps` and :class:`GlobalModel` as the
    synchronous :class:`~medsilo.runtime.federation.RoundLoop` do the work."""

    def __init__(
        self,
        cfg: RunConfig,
        algorithm: Algorithm,
        names: list[str],
        layout: Layout,
        initial_weights: Weights,
        train_sizes: dict[str, int],
        clock: SimClock,
        evaluate: Evaluate,
    ) -> None:
        cfg.sites.check_names(names)
        self.cfg = cfg
        self.algorithm = algorithm
        self.names = names
        self.layout = layout
        self.initial_weights = initial_weights
        self.clock = clock
        self.evaluate = evaluate
        self.coordinator = CoordinatorSteps(cfg, layout, len(names))
        mode = cfg.asynchrony
        assert isinstance(mode, FedAsyncConfig | FedBuffConfig)
        self.mode = mode
        t = cfg.training
        self.concurrency = cohort_size(len(names), t.fraction, t.min_sites)
        self.target_updates = mode.updates or t.rounds * self.concurrency
        self.eval_every_updates = cfg.evaluation.every * self.concurrency
        self.pick = np.random.default_rng([cfg.seed, PICK_TAG])
        self.dispatches = 0
        self.privacy = PrivacyAccounting.build(cfg, algorithm, train_sizes)
        #: Client-level DP: a site contributes at most one update per buffer (its sensitivity).
        self.one_per_buffer = isinstance(algorithm, ClientDP)
        buffer_size = mode.buffer_size if isinstance(mode, FedBuffConfig) else 1
        if self.one_per_buffer and buffer_size > len(names):
            raise ConfigError(
                f"client-level DP with fedbuff takes at most one update per site per buffer, so "
                f"asynchrony.buffer_size ({buffer_size}) cannot exceed the number of "
                f"sites ({len(names)})"
            )
        self.held: set[str] = set()  # sites whose update waits in the buffer (client DP)
        self.retired: list[str] = []  # sites the privacy budget allows no further release
        self.parked = 0  # free slots that found no site to dispatch

    @property
    def done(self) -> bool:
        """Whether the run has received the updates it asked for."""
        return self.received >= self.target_updates

    # --- dispatching --------------------------------------------------------------------

    def _may_dispatch(self, site: str) -> bool:
        if site in self.held:
            return False
        if self.privacy is None or self.privacy.can_release(site):
            return True
        if site not in self.retired:
            self.retired.append(site)
            log.warning(
                "privacy budget: site %s retires after %d releases (epsilon %.3f; one more "
                "would exceed privacy.target_epsilon %g)",
                site,
                self.privacy.trained[site],
                self.privacy.site_epsilon(site, self.privacy.trained[site]),
                self.privacy.budget,
            )
        return False

    def dispatch(self, idle: list[str], now: float) -> AsyncTask | None:
        """Give a free slot to an idle site that may train (removed from ``idle``); park the
        slot and return ``None`` if none may. A task whose simulated dispatch drops out
        (``task.dropped``) never starts: the driver gives it up after the dispatch timeout."""
        eligible = [i for i, s in enumerate(idle) if self._may_dispatch(s)]
        if not eligible:
            self.parked += 1
            return None
        site = idle.pop(eligible[int(self.pick.integers(len(eligible)))])
        self.dispatches += 1
        task = AsyncTask(self.dispatches, site, now, self.clock.drops(self.dispatches, site))
        if task.dropped and self.privacy is not None and not self.one_per_buffer:
            # DP-SGD: the coordinator cannot tell whether a site that never answered
            # trained (and leaked its update), so the dispatch counts as a training.
            self.privacy.count_release(site)
        return task

    def unpark(self, idle: list[str], now: float) -> list[AsyncTask]:
        """Hand parked slots to sites that became eligible (a client-DP buffer emptied)."""
        tasks = []
        while self.parked and any(self._may_dispatch(s) for s in idle):
            self.parked -= 1
            task = self.dispatch(idle, now)
            if task is not None:
                tasks.append(task)
        return tasks

    def start(self, task: AsyncTask) -> tuple[Weights, dict[str, Weights]]:
        """The task's site downloads the current model: ``(weights, the algorithm's
        payload)``, counted as sent."""
        weights = self.model.weights
        payload = self.algorithm.broadcast(self.model.server_state)
        task.version, task.weights = self.version, weights
        if self.privacy is not None and not self.one_per_buffer:
            self.privacy.count_release(task.site)  # DP-SGD: this training is a release
        self.bytes_down += broadcast_bytes(weights, payload)
        return weights, payload

    # --- the run ------------------------------------------------------------------------

    def begin(self, on_round: RoundCallback | None) -> None:
        self.wall_start = time.perf_counter()
        self.model = GlobalModel.start(self.cfg, self.algorithm, self.initial_weights, self.layout)
        self.records: list[RoundRecord] = []
        self.on_round = on_round
        self.pending: RoundFields | None = None
        self.aggregations = 0
        self.version = 0
        self.received = 0
        self.applied = 0
        self.applied_at_eval = 0
        self.last_aggregation_s = 0.0
        self.bytes_down = 0
        self.buffer: list[tuple[Update, int, Update]] = []  # (as sent, staleness, to apply)
        self.wall_mark = self.wall_start
        if self.privacy is not None:
            self.privacy.check_first_release()

    def result(
        self, site_states: dict[str, SiteState], site_weights: dict[str, Weights]
    ) -> FederationResult:
        return FederationResult(
            weights=self.model.weights,
            rounds=self.records,
            site_states=site_states,
            site_weights=site_weights,
            wall_s=time.perf_counter() - self.wall_start,
        )

    def arrive(self, task: AsyncTask, now: float) -> None:
        """The task's update arrived at ``now`` (simulated seconds)."""
        assert task.update is not None
        self.received += 1
        staleness = self.version - task.version
        if isinstance(self.mode, FedAsyncConfig):
            outcome = self.coordinator.process(
                self.aggregations + 1,
                self.algorithm,
                self.model.weights,
                [task.update],
                self.model.server_state,
                len(self.names),
            )
            if outcome.delta is not None:
                a = self.mode.alpha * staleness_weight(staleness, self.mode.staleness)
                current = self.model.weights
                site_model = add(task.weights, outcome.delta)
                mixed = [
                    (a * d).astype(w.dtype)
                    for d, w in zip(subtract(site_model, current), current, strict=True)
                ]
                outcome = replace(outcome, delta=mixed)
            self._aggregated([(task.update, staleness)], outcome, now)
            return
        decoded, rejected = self.coordinator.decode([task.update], self.model.weights)
        if rejected:
            skip = RoundOutcome(
                None, self.model.server_state, [], rejected, skip_reason=rejected[0].reason
            )
            self._aggregated([(task.update, staleness)], skip, now)
            return
        assert isinstance(self.mode, FedBuffConfig)
        scale = fedbuff_weight(staleness)
        u = decoded[0]
        scaled = replace(
            u, delta=[(scale * d).astype(d.dtype) for d in u.delta], encoded_delta=None
        )
        self.buffer.append((task.update, staleness, scaled))
        if self.one_per_buffer:
            self.held.add(task.site)
        if len(self.buffer) < self.mode.buffer_size:
            return
        full, self.buffer = self.buffer, []
        self.held.clear()
        if self.one_per_buffer:
            sites = [u.site for u, _, _ in full]
            assert len(set(sites)) == len(sites), f"a site sent twice to one buffer: {sites}"
        outcome = self.coordinator.process(
            self.aggregations + 1,
            self.algorithm,
            self.model.weights,
            [s for _, _, s in full],
            self.model.server_state,
            len(self.names),
        )
        self._aggregated([(u, tau) for u, tau, _ in full], outcome, now)

    def _aggregated(
        self, sent: list[tuple[Update, int]], outcome: RoundOutcome, now: float
    ) -> None:
        """Apply a server step (unless skipped) and make its record."""
        self.aggregations += 1
        record = self._aggregation_record(self.aggregations, sent, outcome, now)
        if self.privacy is not None:
            if self.one_per_buffer and outcome.delta is not None:
                for update in outcome.accepted:  # averaged into this noisy aggregate
                    self.privacy.count_release(update.site)
            self.privacy.annotate(record, self.model.server_state)
        self.model.apply(outcome)
        if outcome.delta is not None:
            self.applied += len(outcome.accepted)
            self.version += 1
        self.last_aggregation_s = now
        record["updates_received"] = self.received
        record["updates_target"] = self.target_updates
        record["updates_applied"] = self.applied
        record["model_version"] = self.version
        record.update(model_hash_field(self.model.weights))
        if self.applied - self.applied_at_eval >= self.eval_every_updates:
            record.update(self.evaluate(record["round"], self.model.weights, False))
            self.applied_at_eval = self.applied
        self._emit()
        self.pending = record

    def _emit(self) -> None:
        """Close the previous aggregation's record and hand it on (one behind, so the last
        can still be completed)."""
        if self.pending is None:
            return
        self.pending["wall_s"] = time.perf_counter() - self.wall_mark
        self.wall_mark = time.perf_counter()
        record = RoundRecord.from_fields(self.pending)
        self.records.append(record)
        if self.on_round is not None:
            self.on_round(record)
        self.pending = None

    def _aggregation_record(
        self, number: int, sent: list[tuple[Update, int]], outcome: RoundOutcome, now: float
    ) -> RoundFields:
        updates = [u for u, _ in sent]
        record = round_record(
            number, [u.site for u in updates], updates, self.model.weights, {}, None, outcome
        )
        stale = [tau for _, tau in sent]
        record.update(
            {
                "mode": self.mode.mode,
                "bytes_down": self.bytes_down,
                "sim_time_s": now - self.last_aggregation_s,
                "sim_clock_s": now,
                "staleness": stale,
            }
        )
        self.bytes_down = 0
        if stale:
            record["extra"]["staleness_mean"] = float(np.mean(stale))
        return record

    def finish(self, reason: str, now: float) -> None:
        """End with an evaluated record that says why the run stopped, then emit it."""
        if self.pending is None:
            record: RoundFields = {
                "round": 0,
                "mode": self.mode.mode,
                "sites": [],
                "train_loss": None,
                "bytes_up": 0,
                "bytes_down": self.bytes_down,
                "sim_time_s": now,
                "sim_clock_s": now,
                "skipped": True,
                "extra": {},
            }
            self.pending = record
        if "test" not in self.pending:
            self.pending.update(self.evaluate(self.pending["round"], self.model.weights, True))
        self.pending.update(model_hash_field(self.model.weights))
        self.pending["stop_reason"] = reason
        self.pending["updates_received"] = self.received
        if self.privacy is not None:  # trainings started since the last aggregation count
            self.privacy.annotate(self.pending, self.model.server_state)
        self._emit()

    def budget_reason(self) -> str:
        assert self.privacy is not None
        rest = (
            "no site can train any more"
            if len(self.retired) == len(self.names)
            else "the other sites' updates cannot fill another buffer (one per site)"
        )
        return (
            f"privacy budget: sites {', '.join(sorted(self.retired))} retired (one more release "
            f"would take their epsilon above privacy.target_epsilon {self.privacy.budget:g}, "
            f"delta {self.privacy.delta:g}) and {rest}; stopped after "
            f"{self.received} of {self.target_updates} updates at epsilon "
            f"{self.privacy.epsilon():.3f}"
        )


class AsyncEngine:
    """FedAsync / FedBuff in process: :class:`AsyncCoordinator` driven by an event queue on
    the simulated clock over the same sites (:class:`InProcessSites`) as the synchronous
    :class:`~medsilo.runtime.federation.RoundLoop`."""

    def __init__(self, cfg: RunConfig, prep: PreparedFederation, algorithm: Algorithm) -> None:
        self.sites = InProcessSites(cfg, prep, algorithm)
        self.clock = self.sites.clock
        self.core = AsyncCoordinator(
            cfg,
            algorithm,
            self.sites.names,
            prep.layout,
            prep.initial_weights,
            self.sites.train_sizes,
            self.clock,
            self.sites.evaluate,
        )
        self.mode = self.core.mode
        self.queue: list[_Event] = []
        self.seq = 0

    def _push(self, time_s: float, kind: str, task: AsyncTask) -> None:
        self.seq += 1
        heapq.heappush(self.queue, _Event(time_s, self.seq, kind, task))

    def _schedule(self, task: AsyncTask | None, now: float) -> None:
        """A dispatched task starts at its site's next availability window; one that drops
        out is given up after the dispatch timeout."""
        if task is None:
            return
        if task.dropped:
            self._push(now + self.mode.dispatch_timeout_s, "timeout", task)
        else:
            self._push(self.clock.available_from(task.site, now), "start", task)

    def run(self, on_round: RoundCallback | None) -> FederationResult:
        core = self.core
        core.begin(on_round)
        idle = list(core.names)
        for _ in range(core.concurrency):
            self._schedule(core.dispatch(idle, 0.0), 0.0)
        stop_reason = "updates"
        fruitless = 0
        now = 0.0
        while self.queue:
            event = heapq.heappop(self.queue)
            if self.mode.max_sim_time_s is not None and event.time_s > self.mode.max_sim_time_s:
                stop_reason = "max_sim_time_s"
                break
            now = event.time_s
            task = event.task
            if event.kind == "timeout":
                fruitless += 1
                if fruitless > MAX_FRUITLESS_DISPATCHES_PER_SLOT * core.concurrency:
                    stop_reason = "no site returned an update"
                    break
            elif event.kind == "start":
                self._start(task, now)
                continue
            else:
                fruitless = 0
                core.arrive(task, now)
                if core.done:
                    break
            idle.append(task.site)
            self._schedule(core.dispatch(idle, now), now)
            for parked in core.unpark(idle, now):
                self._schedule(parked, now)
        if not self.queue and core.retired and not core.done:
            stop_reason = core.budget_reason()
        core.finish(stop_reason, now)
        return core.result(self.sites.states, self.sites.site_weights(core.model.weights))

    def _start(self, task: AsyncTask, now: float) -> None:
        """The site downloads the current model, trains, and its arrival is scheduled."""
        weights, payload = self.core.start(task)
        task.update = self.sites.site_update(task.number, task.site, weights, payload)
        timing = self.clock.dispatch(
            task.site,
            now,
            broadcast_bytes(weights, payload),
            self.clock.examples(task.update),
            update_bytes(task.update),
        )
        self._push(timing.arrival_s, "arrival", task)
