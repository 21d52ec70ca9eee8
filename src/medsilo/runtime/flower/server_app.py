"""The coordinator half of a federation as a Flower ServerApp.

The rounds are :class:`~medsilo.runtime.federation.RoundLoop`, the one loop every runtime
shares; this module only supplies its transport, :class:`FlowerSites`: one ``train`` message
per sampled site (with ``secure_aggregation`` mechanism ``masking``, the protocol's four
exchanges, :mod:`.secure_server`; with ``ckks``, encrypted updates summed here and decrypted
by the key-holding site, :mod:`.ckks_server`), updates sorted by site index (so floating-point sums
happen in the engine's order), and ``evaluate`` messages to every site (each evaluates its
own deployable model on its own test set) while the global model is evaluated on the pooled
test set here (or, deployed, from the sites' reports). With ``train_with_evaluation`` (a
deployed coordinator) a round's evaluation rides on the next round's ``train`` message
(sites outside that cohort get an ``evaluate`` message in the same exchange), so a round
costs one exchange; only the run's last evaluation has an exchange of its own.

With ``asynchrony.mode`` ``fedasync`` or ``fedbuff`` there are no rounds:
:func:`run_coordinator` drives the engine's
:class:`~medsilo.runtime.asynchronous.AsyncCoordinator` with push/pull messages instead
(:mod:`.asynchronous_server`), evaluating through the same :class:`FlowerSites`.

Results go into a :class:`FlowerRun` passed in by the caller, which it reads once
``run_simulation`` (or a deployment's ``flwr run``) has returned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from flwr.app import Context, Message, MessageType, RecordDict
from flwr.serverapp import Grid, ServerApp
from torch import nn

from medsilo.algorithms.base import Algorithm, SiteState
from medsilo.asynchrony import SyncConfig
from medsilo.config import BASELINES, RunConfig
from medsilo.governance.checkpoint import Checkpoint, CheckpointWriter
from medsilo.governance.patient_consent import refuse_outside_engine
from medsilo.ledger.witness import Countersignature, WitnessError
from medsilo.models.weights import Layout
from medsilo.runtime.asynchronous import AsyncCoordinator
from medsilo.runtime.clinical import ClinicalMetrics
from medsilo.runtime.clock import RoundTiming, SimClock, flower_clock_problem
from medsilo.runtime.cohorts import cohort_size, refuse_cohort_evaluation
from medsilo.runtime.factory import build_run_algorithm, refuse_incompatible
from medsilo.runtime.federation import RoundLoop, TrainingExchange
from medsilo.runtime.flower import records as rec
from medsilo.runtime.flower import witness_records as witness_wire
from medsilo.runtime.flower.asynchronous_server import run_async
from medsilo.runtime.flower.ckks_server import CKKSCoordinator, ckks_problem
from medsilo.runtime.flower.errors import FlowerRunError as FlowerRunError  # re-exported
from medsilo.runtime.flower.secure_server import secure_train_round
from medsilo.runtime.flower.straggler import StragglerDeadline
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.records import (
    attack_fields,
    broadcast_bytes,
    evaluate_weights,
    update_bytes,
)
from medsilo.runtime.round_record import RoundCallback, RoundFields, RoundRecord
from medsilo.runtime.rounds import updates_needed
from medsilo.runtime.site_report import SiteReport
from medsilo.secure.aggregation import secure_aggregation
from medsilo.secure.result import EXTRA_SLOTS
from medsilo.training.samples import Samples
from medsilo.types import Weights

if TYPE_CHECKING:
    from medsilo.ledger.witness import HeadProof
    from medsilo.ledger.witness_feed import WitnessFeed

log = logging.getLogger(__name__)

#: How often Flower's own ``Grid.send_and_receive`` polls for replies (1.41 and 1.42).
FLOWER_REPLY_POLL_S = 3.0


@dataclass
class FlowerRun:
    """Where the ServerApp leaves its results (it runs in a thread that returns nothing)."""

    weights: Weights | None = None
    rounds: list[RoundRecord] = field(default_factory=list)
    site_states: dict[str, SiteState] = field(default_factory=dict)
    site_weights: dict[str, Weights] = field(default_factory=dict)
    #: ``time.perf_counter()`` when the main loop started, when every site had answered
    #: the first message (so Flower and its workers were up), and when it finished.
    started_at: float | None = None
    ready_at: float | None = None
    finished_at: float | None = None

    @property
    def completed(self) -> bool:
        return self.finished_at is not None and self.weights is not None


def evaluation_record(
    pooled: Mapping[str, Any], per_site: Mapping[str, Mapping[str, Any]]
) -> RoundFields:
    """Combine pooled-test and per-site results as ``evaluation_fields`` does.

    (``evaluation_fields`` evaluates and combines in one go; split, the engine and this
    ServerApp could share the combining half.)
    """
    accs = [float(v["accuracy"]) for v in per_site.values() if v["n"]]
    return {
        "test": dict(pooled),
        "per_site": {k: dict(v) for k, v in per_site.items()},
        "mean_site_accuracy": float(np.mean(accs)) if accs else None,
    }


@dataclass
class CoordinatorView:
    """What the coordinator holds: the roster, the model and how to score it.

    In simulation it comes from a :class:`PreparedFederation` (:meth:`of`); a deployed
    coordinator holds no patient data, so its ``pooled_test`` is ``None`` and the global
    model's pooled metrics are the example-weighted sums of what each site reports for the
    global model on its own test set (exact for loss and accuracy, which are means).
    """

    names: list[str]
    model: nn.Module
    layout: Layout
    initial_weights: Weights
    train_sizes: dict[str, int]
    pooled_test: Samples | None
    #: ``binary`` or ``multiclass`` (which metric the tables lead with).
    task: str = "binary"

    @staticmethod
    def of(prep: PreparedFederation) -> CoordinatorView:
        return CoordinatorView(
            names=prep.fed.site_names,
            model=prep.model,
            layout=prep.layout,
            initial_weights=prep.initial_weights,
            train_sizes={n: len(prep.train[n]) for n in prep.fed.site_names},
            pooled_test=prep.pooled_test,
            task=prep.fed.task,
        )


@dataclass
class CoordinatorOptions:
    """How the coordinator talks to sites and survives failures.

    ``tolerant``: a site that fails, disconnects or stays silent past ``reply_timeout_s``
    is dropped from that round (logged, listed in the record) instead of ending the run;
    the round then goes on with whoever answered, or is skipped when fewer than
    ``training.min_sites`` updates arrived. ``poll_interval_s``: poll the SuperLink for
    replies this often instead of ``Grid.send_and_receive``'s fixed 3 s (Flower 1.41 and 1.42).
    ``straggler_timeout_s`` (tolerant only): once the round's minimum number of sites has
    replied in a training or evaluation exchange, wait at most this long for the rest, then
    drop them as the reply timeout would (:mod:`.straggler`; ``None``: no such deadline).
    ``nodes``: site -> node id when enrolment already identified them (deployment).
    ``checkpoints`` saves the coordinator state after each due round; ``resume`` starts
    after a checkpoint's round. ``witness``: the audit ledger's head goes to the sites with
    each ``train`` message and their countersignatures are ledgered (docs/audit-ledger.md).
    """

    reply_timeout_s: float | None = 3600.0
    connect_timeout_s: float = 300.0
    tolerant: bool = False
    poll_interval_s: float | None = None
    straggler_timeout_s: float | None = None
    nodes: dict[str, int] | None = None
    checkpoints: CheckpointWriter | None = None
    resume: Checkpoint | None = None
    witness: WitnessFeed | None = None
    #: Each round's evaluation rides on the next round's training message (one exchange
    #: per round; not with secure aggregation, whose training is its own protocol).
    train_with_evaluation: bool = False


def pooled_from_sites(per_site: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Pooled-test metrics from per-site ``{loss, accuracy, n}`` (example-weighted)."""
    n = sum(int(v["n"]) for v in per_site.values())
    if n == 0:
        return {"loss": float("nan"), "accuracy": float("nan"), "n": 0}
    return {
        "loss": sum(float(v["loss"]) * int(v["n"]) for v in per_site.values() if v["n"]) / n,
        "accuracy": sum(float(v["accuracy"]) * int(v["n"]) for v in per_site.values() if v["n"])
        / n,
        "n": n,
    }


class FlowerSites:
    """The Flower transport: the sites are SuperNodes reached through a :class:`Grid`.

    Messages: ``query`` (identify), ``train`` (or secure aggregation's four exchanges,
    :mod:`.secure_server`) and ``evaluate``. Updates come back sorted by site index so
    floating-point sums happen in the engine's order.
    """

    def __init__(
        self,
        cfg: RunConfig,
        view: CoordinatorView,
        algorithm: Algorithm,
        out: FlowerRun,
        options: CoordinatorOptions,
        grid: Grid,
    ) -> None:
        self.cfg = cfg
        self.view = view
        self.algorithm = algorithm
        self.out = out
        self.options = options
        self.grid = grid
        self.reply_timeout_s = options.reply_timeout_s
        self.names = view.names
        self.clock = SimClock(
            cfg.seed,
            self.names,
            {n: cfg.sites.record(n) for n in self.names},
            cfg.training.batch_size,
        )
        self.nodes: dict[str, int] = dict(options.nodes or {})
        self.secure = secure_aggregation(
            cfg, cohort_size(len(self.names), cfg.training.fraction, cfg.training.min_sites)
        )
        problem = ckks_problem(cfg, self.names)
        if problem is not None:
            raise FlowerRunError(problem)
        #: mechanism ckks: the key holder is a site (:mod:`.ckks_server`)
        self.ckks = (
            CKKSCoordinator(self.secure)
            if self.secure is not None and cfg.secure_aggregation.mechanism == "ckks"
            else None
        )
        self.clinical = ClinicalMetrics.of(cfg, view.task)
        #: Replies that must arrive before the straggler deadline starts (as RoundLoop's).
        self.needed = updates_needed(cfg)

    # --- messaging --------------------------------------------------------------------

    def identify(self) -> None:
        """Learn which node is which site (unless enrolment already did)."""
        if self.nodes:
            return
        need = len(self.names)
        node_ids = wait_for_nodes(
            self.grid,
            need,
            need,
            self.options.connect_timeout_s,
            0.05,
            f" (sites: {self.names})",
        )
        messages = [
            Message(RecordDict(), dst_node_id=n, message_type=MessageType.QUERY, group_id="0")
            for n in node_ids
        ]
        replies = send_and_collect(self.grid, messages, self.reply_timeout_s, None)
        failures = [
            f"node {r.metadata.src_node_id}: {r.error.reason}" for r in replies if r.has_error()
        ]
        if failures:
            raise FlowerRunError("sites failed to start: " + "; ".join(failures))
        for reply in replies:
            site, index = rec.read_identity(reply.content)
            if site in self.nodes:
                raise FlowerRunError(f"two nodes claim to be site {site!r}")
            if site not in self.names or self.names.index(site) != index:
                raise FlowerRunError(
                    f"node {reply.metadata.src_node_id} is site {site!r} (index {index}), "
                    f"which this federation does not have at that index: {self.names}"
                )
            self.nodes[site] = reply.metadata.src_node_id
        missing = [s for s in self.names if s not in self.nodes]
        if missing:
            raise FlowerRunError(f"no node answered for site(s) {missing} within the reply timeout")

    def _exchange(
        self,
        rnd: int,
        message_type: str | Mapping[str, str],
        contents: Mapping[str, RecordDict],
        counted: Iterable[str],
    ) -> dict[str, RecordDict]:
        """Send one message per site and return each site's reply content.

        A failing or silent site ends the run, unless the coordinator is ``tolerant``: then
        it is logged and left out of the replies (the caller treats it as dropped), and
        with a straggler timeout the sites still silent that long after ``self.needed`` of
        the ``counted`` sites replied are dropped too.
        """
        if self.options.tolerant:
            return self._exchange_tolerant(rnd, message_type, contents, counted)
        got, problems = self._send(rnd, message_type, contents)
        if problems:
            raise FlowerRunError(f"round {rnd} ({_kinds(message_type)}): " + "; ".join(problems))
        return got

    def _exchange_tolerant(
        self,
        rnd: int,
        message_type: str | Mapping[str, str],
        contents: Mapping[str, RecordDict],
        counted: Iterable[str] = (),
    ) -> dict[str, RecordDict]:
        """Like :meth:`_exchange`, but a site that fails or stays silent is only logged and
        left out of the replies (secure aggregation treats it as dropped; its phases pass
        no ``counted`` sites, so no straggler deadline applies to them)."""
        got, problems = self._send(rnd, message_type, contents, self._straggler(counted))
        for problem in problems:
            log.warning("round %d (%s): %s; treated as dropped", rnd, _kinds(message_type), problem)
        return got

    def _straggler(self, counted: Iterable[str]) -> StragglerDeadline | None:
        """The straggler deadline of an exchange whose ``counted`` sites' replies make the
        quorum (``None`` without a straggler timeout or counted sites)."""
        grace_s = self.options.straggler_timeout_s
        sites = [s for s in counted if s in self.nodes]
        if grace_s is None or not sites:
            return None
        nodes = frozenset(self.nodes[s] for s in sites)
        return StragglerDeadline(grace_s, min(self.needed, len(nodes)), nodes)

    def _send(
        self,
        rnd: int,
        message_type: str | Mapping[str, str],
        contents: Mapping[str, RecordDict],
        straggler: StragglerDeadline | None = None,
    ) -> tuple[dict[str, RecordDict], list[str]]:
        """Send one message per site (of ``message_type``, or of that site's type when it
        is a mapping): ``(reply content per site, problems)``."""
        problems: list[str] = []
        if self.options.tolerant:  # a node the SuperLink no longer lists cannot answer
            connected = set(self.grid.get_node_ids())
            gone = [s for s in contents if self.nodes.get(s) not in connected]
            problems += [f"site {s!r} is not connected" for s in gone]
            contents = {s: c for s, c in contents.items() if s not in gone}
        messages = [
            Message(
                content,
                dst_node_id=self.nodes[site],
                message_type=message_type if isinstance(message_type, str) else message_type[site],
                group_id=str(rnd),
            )
            for site, content in contents.items()
        ]
        replies = send_and_collect(
            self.grid, messages, self.reply_timeout_s, self.options.poll_interval_s, straggler
        )
        site_of = {node: site for site, node in self.nodes.items()}
        got: dict[str, RecordDict] = {}
        failed: set[str] = set()
        for reply in replies:
            site = site_of.get(reply.metadata.src_node_id)
            if site is None or site not in contents:
                problems.append(f"an unexpected reply came from node {reply.metadata.src_node_id}")
            elif reply.has_error():
                failed.add(site)
                problems.append(f"site {site!r} failed: {reply.error.reason}")
            else:
                got[site] = reply.content
        missing = [s for s in contents if s not in got and s not in failed]
        if missing:
            within = f"within {self.reply_timeout_s}s"
            if straggler is not None and straggler.fired:
                within = straggler.describe()
            problems.append(f"site(s) {missing} did not reply {within}")
        return got, problems

    # --- Transport ----------------------------------------------------------------------

    def train(
        self,
        rnd: int,
        chosen: list[str],
        weights: Weights,
        payload: dict[str, Weights],
        sim_clock_s: float,
        heads: Mapping[str, HeadProof] | None = None,
        evaluate_first: bool = False,
    ) -> TrainingExchange:
        """The round's training exchange(s), on the simulated clock as in the engine; each
        site's ``train`` message carries its ledger head proof from ``heads`` (not with
        secure aggregation, whose sites witness the run's final head only). With
        ``evaluate_first`` each ``train`` message also asks the site to evaluate ``weights``
        before it trains, and every site outside ``chosen`` gets an ``evaluate`` message in
        the same exchange."""
        assert isinstance(self.cfg.asynchrony, SyncConfig)
        timeout_s = self.cfg.asynchrony.round_timeout_s
        content = rec.broadcast_content(
            rnd,
            weights,
            payload,
            global_eval=evaluate_first and self.view.pooled_test is None,
            evaluate_first=evaluate_first,
        )
        down = broadcast_bytes(weights, payload)

        def timing_of(
            dropped: list[str], up: Mapping[str, int], examples: Mapping[str, int]
        ) -> RoundTiming:
            # ``dropped``: sites that really failed.
            return self.clock.sync_round(
                sim_clock_s, chosen, dropped, down, up, examples, timeout_s
            )

        if self.secure is not None:  # the coordinator gets masked payloads and sums only
            if evaluate_first:
                raise FlowerRunError("secure aggregation's rounds evaluate in their own exchange")

            def send(kind: str, contents: Mapping[str, RecordDict]) -> dict[str, RecordDict]:
                return self._exchange_tolerant(rnd, kind, contents)

            def clocked(dropped: list[str], clocks: dict[str, dict[str, int]]) -> RoundTiming:
                return timing_of(
                    dropped,
                    {s: c["clock_bytes"] for s, c in clocks.items()},
                    {s: c["clock_examples"] for s, c in clocks.items()},
                )

            length = sum(w.size for w in weights) + EXTRA_SLOTS
            if self.ckks is not None:
                done = self.ckks.train_round(send, rnd, chosen, content, length, clocked)
            else:
                done = secure_train_round(self.secure, send, rnd, chosen, content, length, clocked)
            masked = done.secure.updates
            return TrainingExchange(masked, masked, done.trained, done.timing, done.secure)
        contents = {
            site: witness_wire.with_head(content, (heads or {}).get(site)) for site in chosen
        }
        kinds = {site: MessageType.TRAIN for site in chosen}
        if evaluate_first:  # the rest of the federation evaluates in the same exchange
            others = [site for site in self.names if site not in chosen]
            only_eval = self._evaluation_content(rnd, weights, last=False)
            contents |= {site: only_eval for site in others}
            kinds |= {site: MessageType.EVALUATE for site in others}
        everyone = self._exchange(rnd, kinds, contents, chosen)
        evaluation = None
        if evaluate_first:
            evaluation = self._evaluation_fields(weights, everyone, last=False)
        replies = {site: everyone[site] for site in chosen if site in everyone}
        answered = [site for site in chosen if site in replies]
        updates = [rec.content_to_update(replies[site]) for site in answered]
        for site, update in zip(answered, updates, strict=True):
            if update.site != site:
                raise FlowerRunError(
                    f"round {rnd}: node of site {site!r} answered as {update.site!r}"
                )
        updates.sort(key=lambda u: self.names.index(u.site))
        timing = timing_of(
            [s for s in chosen if s not in replies],
            {u.site: update_bytes(u) for u in updates},
            {u.site: self.clock.examples(u) for u in updates},
        )
        on_time = [u for u in updates if u.site in timing.on_time]
        trained = [u.site for u in updates]
        signed = countersignatures(f"round {rnd}", replies)
        return TrainingExchange(
            updates, on_time, trained, timing, countersignatures=signed, evaluation=evaluation
        )

    def evaluate(self, rnd: int, weights: Weights, last: bool) -> RoundFields:
        content = self._evaluation_content(rnd, weights, last)
        everyone = {site: content for site in self.names}
        replies = self._exchange(rnd, MessageType.EVALUATE, everyone, self.names)
        return self._evaluation_fields(weights, replies, last)

    def _evaluation_content(self, rnd: int, weights: Weights, last: bool) -> RecordDict:
        pooled_here = self.view.pooled_test is not None
        return rec.broadcast_content(
            rnd,
            weights,
            return_state=last and pooled_here,
            global_eval=not pooled_here,
            final=last,
        )

    def _evaluation_fields(
        self, weights: Weights, replies: Mapping[str, RecordDict], last: bool
    ) -> RoundFields:
        """The round record's evaluation fields from the sites' replies (sites that did not
        answer are listed in ``evaluation_missing``)."""
        view = self.view
        pooled_here = view.pooled_test is not None
        answered = [site for site in self.names if site in replies]
        per_site = {site: rec.read_eval(replies[site]) for site in answered}
        if view.pooled_test is not None:
            pooled = evaluate_weights(view.model, weights, view.pooled_test).as_dict()
        else:  # no data here: the global model as scored by each site on its own test set
            pooled = pooled_from_sites(
                {site: rec.read_eval(replies[site], rec.GLOBAL_EVAL) for site in answered}
            )
        if last and pooled_here:
            self.out.site_states = {
                site: rec.records_to_named_weights(replies[site], rec.STATE_PREFIX)
                for site in answered
            }
            self.out.site_weights = {
                site: self.algorithm.site_weights(weights, state, view.layout)
                for site, state in self.out.site_states.items()
            }
        record = evaluation_record(pooled, per_site)
        if self.clinical is not None:  # merged here from the sites' metric states
            reports = {s: SiteReport.from_wire(rec.read_clinical(replies[s])) for s in answered}
            record |= self.clinical.fields(reports)
        if len(answered) < len(self.names):
            record["evaluation_missing"] = [s for s in self.names if s not in replies]
        if view.pooled_test is None:
            return record
        return record | attack_fields(view.model, weights, view.pooled_test, self.cfg.attack)

    def site_states(self) -> dict[str, SiteState]:
        # Site states stay at the sites (deployed_site keeps them per round).
        return {n: {} for n in self.names}

    def restore(self, states: dict[str, SiteState]) -> None:
        """Nothing to do here: each site reloads its state of the resumed round."""


def _kinds(message_type: str | Mapping[str, str]) -> str:
    """The message type(s) of an exchange, for a log line."""
    if isinstance(message_type, str):
        return message_type
    return "+".join(sorted(set(message_type.values())))


def countersignatures(when: str, replies: Mapping[str, RecordDict]) -> dict[str, Countersignature]:
    """The sites' countersignatures in their replies; an unreadable one is logged and left
    out (the coordinator's ledger then lacks it, which the site's witness file shows)."""
    out = {}
    for site, content in replies.items():
        try:
            signature = witness_wire.read_countersignature(content)
        except WitnessError as err:
            log.warning("%s: site %r's countersignature is unreadable: %s", when, site, err)
            continue
        if signature is not None:
            out[site] = signature
    return out


def run_coordinator(
    grid: Grid,
    cfg: RunConfig,
    view: CoordinatorView,
    algorithm: Algorithm,
    out: FlowerRun,
    on_round: RoundCallback | None,
    options: CoordinatorOptions,
) -> None:
    """Identify the sites, then run :class:`RoundLoop` over :class:`FlowerSites`; the
    results go into ``out`` (a ServerApp's main returns nothing)."""
    out.started_at = time.perf_counter()
    sites = FlowerSites(cfg, view, algorithm, out, options, grid)
    sites.identify()
    out.ready_at = time.perf_counter()

    def record_round(record: RoundRecord) -> None:
        out.rounds.append(record)
        if on_round is not None:
            on_round(record)

    if not isinstance(cfg.asynchrony, SyncConfig):  # FedAsync, FedBuff: docs/asynchronous.md
        if options.resume is not None:
            raise FlowerRunError("an asynchronous run cannot be resumed (it has no rounds)")
        core = AsyncCoordinator(
            cfg,
            algorithm,
            view.names,
            view.layout,
            view.initial_weights,
            view.train_sizes,
            sites.clock,
            sites.evaluate,
        )
        out.weights = run_async(
            core,
            sites,
            grid,
            record_round,
            options.reply_timeout_s,
            options.poll_interval_s,
            options.tolerant,
        )
        out.finished_at = time.perf_counter()
        return
    loop = RoundLoop(
        cfg,
        algorithm,
        view.names,
        view.layout,
        view.initial_weights,
        view.train_sizes,
        record_round,
        options.checkpoints,
        options.resume,
        options.witness,
        options.train_with_evaluation and sites.secure is None,
    )
    model, _ = loop.run(sites)
    out.weights = model.weights  # site states and weights came with the last evaluation
    out.finished_at = time.perf_counter()


def wait_for_nodes(
    grid: Grid, need: int, floor: int, timeout_s: float, poll_s: float, hint: str
) -> list[int]:
    """The connected node ids once ``need`` are connected; after ``timeout_s``, those
    connected if at least ``floor`` (logged), else :class:`FlowerRunError` (``hint`` is
    appended to its message)."""
    deadline = time.monotonic() + timeout_s
    while True:
        node_ids = sorted(grid.get_node_ids())
        if len(node_ids) >= need:
            return node_ids
        if time.monotonic() > deadline:
            if len(node_ids) >= floor:
                log.warning(
                    "%d of %d sites connected within %.0fs; going on with them",
                    len(node_ids),
                    need,
                    timeout_s,
                )
                return node_ids
            raise FlowerRunError(
                f"only {len(node_ids)} of {need} sites connected within {timeout_s:.0f}s{hint}"
            )
        time.sleep(poll_s)


def expire_with_the_exchange(messages: list[Message], timeout_s: float | None) -> None:
    """Give each message a TTL of ``timeout_s``, the exchange's deadline.

    Flower's ``send_and_receive(timeout=...)`` only bounds the coordinator's wait: "a message
    remains valid until its TTL, which is not affected by timeout" (its docstring), and the
    default TTL is 12 hours. So a site that reconnects after the coordinator gave up on it
    would still pull and work on that stale message, and its late reply would be stored. With
    the TTL equal to the deadline the SuperLink stops handing the message out once the
    coordinator stops waiting, answers a pull for it with an "unavailable" error, and refuses
    a reply to it (a reply's TTL may not outlast its instruction's).
    """
    if timeout_s is None or not timeout_s > 0:  # Flower requires a positive TTL
        return
    for message in messages:
        message.metadata.ttl = float(timeout_s)


def send_and_collect(
    grid: Grid,
    messages: list[Message],
    timeout_s: float | None,
    poll_interval_s: float | None,
    straggler: StragglerDeadline | None = None,
) -> list[Message]:
    """``grid.send_and_receive``, or the same with a shorter reply poll.

    Flower 1.42's (as 1.41's) ``send_and_receive`` over the SuperLink's HTTP grid sleeps a fixed 3 s
    between polls for replies, which adds up to 3 s to every exchange; with
    ``poll_interval_s`` the replies are pulled that often instead (one small request each).
    With a ``straggler`` deadline the replies are pulled too (every ``poll_interval_s``, else
    Flower's 3 s) and the wait also ends once that deadline has passed. Each message's TTL is
    the exchange's ``timeout_s`` (:func:`expire_with_the_exchange`).
    """
    expire_with_the_exchange(messages, timeout_s)
    if (poll_interval_s is None and straggler is None) or not messages:
        return list(grid.send_and_receive(messages, timeout=timeout_s))
    poll_s = FLOWER_REPLY_POLL_S if poll_interval_s is None else poll_interval_s
    pending = set(grid.push_messages(messages))
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    replies: list[Message] = []
    while pending:
        got = list(grid.pull_messages(pending))
        replies += got
        pending -= {m.metadata.reply_to_message_id for m in got}
        now = time.monotonic()
        if not pending or (deadline is not None and now >= deadline):
            break
        if straggler is not None and straggler.expired(
            (m.metadata.src_node_id for m in replies), now
        ):
            break
        time.sleep(poll_s)
    return replies


def make_server_app(
    cfg: RunConfig,
    prepared: PreparedFederation,
    out: FlowerRun,
    *,
    algorithm: Algorithm | None = None,
    on_round: RoundCallback | None = None,
    reply_timeout_s: float | None = 3600.0,
    connect_timeout_s: float = 300.0,
) -> ServerApp:
    """A ServerApp that runs ``cfg.training.rounds`` rounds and fills in ``out``.

    ``prepared`` supplies the initial weights, the layout, the site names (which must match
    the ClientApps') and the pooled test set. ``on_round`` sees each round's record.
    """
    if cfg.algorithm.name in BASELINES:
        raise ValueError(
            f"{cfg.algorithm.name!r} is a baseline, not a federated algorithm: it has no "
            "ServerApp; run it in-process with medsilo.runtime.simulation.run_federation"
        )
    problem = flower_clock_problem(cfg)
    if problem is not None:
        raise ValueError(problem)
    if cfg.governance.checkpoint is not None:  # docs/governance.md
        raise ValueError(
            "governance.checkpoint is written by the in-process engine and by a deployed "
            "coordinator (`medsilo coordinator start`, which checkpoints every round); the "
            "simulated Flower ServerApp does not checkpoint (remove governance.checkpoint)"
        )
    refuse_outside_engine(cfg, "the Flower ServerApp")  # docs/governance.md
    refuse_cohort_evaluation(cfg.evaluation.sites, "the Flower ServerApp")  # docs/scale.md
    problem = ckks_problem(cfg, prepared.fed.site_names)
    if problem is not None:
        raise ValueError(problem)
    algo = algorithm if algorithm is not None else build_run_algorithm(cfg, len(prepared.fed.sites))
    refuse_incompatible(cfg, algo, prepared.model)  # an algorithm passed in: as a named one
    options = CoordinatorOptions(
        reply_timeout_s=reply_timeout_s, connect_timeout_s=connect_timeout_s
    )
    view = CoordinatorView.of(prepared)
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        run_coordinator(grid, cfg, view, algo, out, on_round, options)

    return app
