"""THE round loop: one copy, driven by every synchronous runtime through a transport.

What differs between the in-process engine, the simulated Flower federation and a deployed
one is only how the global model reaches the sites and how their updates come back: that is
a :class:`Transport` (in the spirit of Flower's ``Strategy.start(grid)``, where the loop is
handed the network layer). Everything else happens here, once:

1. cohort sampling (:func:`sample_sites`) minus absent sites (governance);
2. :meth:`Algorithm.broadcast`, then :meth:`Transport.train` (the sites' local updates, the
   simulated clock, and secure aggregation's masked exchange where configured); with a
   witness feed, each site's message carries the audit ledger's head proof and its
   countersignature comes back and is ledgered (:mod:`medsilo.ledger.witness_feed`);
3. :class:`~medsilo.runtime.rounds.CoordinatorSteps` (decode, validate, skip or aggregate
   robustly around :meth:`Algorithm.aggregate`);
4. the round record (:func:`~medsilo.runtime.records.round_record`), the privacy
   accountant's close of the round (which may stop the run), the server optimiser's step;
5. evaluation every ``evaluation.every`` rounds, at the last round and when stopping; with
   ``train_with_evaluation`` (a deployed federation, NVIDIA FLARE's train-with-evaluation
   pattern) a round's evaluation rides on the next round's training message instead: each
   site first evaluates the model it receives, which is exactly that round's result, in the
   state that round left it, then trains; so the round's record (and its checkpoint) is
   completed one exchange later, with the same contents. The last round, and a round that
   stops the run, still evaluate in an exchange of their own;
   an :class:`UpdateObserver`, if given, sees the updates the coordinator accepted, as decoded,
   with the global weights they were computed from (an honest-but-curious coordinator's view:
   the empirical leakage measures of :mod:`medsilo.bench.paper_leakage` attack them);
6. the round's fields become a typed :class:`~medsilo.runtime.round_record.RoundRecord`,
   handed to ``on_round`` (which makes it durable: ``rounds.jsonl`` with fsync,
   the audit ledger) and only then is the checkpoint written, so a crash between the two
   redoes that round on resume and never leaves a gap in the history.

The asynchronous engine (:mod:`medsilo.runtime.asynchronous`) is an event-driven driver of
the same steps: the same site transport, :class:`CoordinatorSteps` and :class:`GlobalModel`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from medsilo.aggregation.server_optimizers import ServerOptimizer
from medsilo.algorithms.base import Algorithm, ServerState, SiteState
from medsilo.config import RunConfig
from medsilo.governance.checkpoint import Checkpoint, CheckpointWriter
from medsilo.governance.participation import Participation
from medsilo.models.weights import Layout
from medsilo.privacy.accounting import PrivacyAccounting
from medsilo.runtime.clock import RoundTiming
from medsilo.runtime.cohorts import cohort_size
from medsilo.runtime.factory import build_server_optimizer
from medsilo.runtime.records import model_hash_field, round_record
from medsilo.runtime.round_record import RoundCallback, RoundFields, RoundRecord
from medsilo.runtime.rounds import CoordinatorSteps, RoundOutcome
from medsilo.secure.result import SecureRound
from medsilo.types import Update, Weights

if TYPE_CHECKING:
    from medsilo.ledger.witness import Countersignature, HeadProof
    from medsilo.ledger.witness_feed import WitnessFeed


def sample_sites(
    names: list[str], fraction: float, min_sites: int, seed: int, rnd: int
) -> list[str]:
    """The round's cohort: every site, or a seeded sample of ``cohort_size`` of them."""
    count = cohort_size(len(names), fraction, min_sites)
    if count >= len(names):
        return list(names)
    rng = np.random.default_rng([seed, rnd, 7919])
    chosen = rng.choice(len(names), size=count, replace=False)
    return [names[i] for i in sorted(chosen)]


@dataclass
class FederationResult:
    """What a finished run leaves: the global model, every round's record and, where the
    runtime holds them, each site's state and deployable weights."""

    weights: Weights
    rounds: list[RoundRecord]
    site_states: dict[str, SiteState] = field(default_factory=dict)
    site_weights: dict[str, Weights] = field(default_factory=dict)
    wall_s: float = 0.0


@dataclass
class TrainingExchange:
    """What one round's training exchange brought back.

    ``sent``: the updates as the sites sent them (the record counts their bytes);
    ``received``: what the coordinator steps process (the updates on time, or secure
    aggregation's masked payloads); ``trained``: the sites that trained (privacy accounting,
    contributions); ``timing``: the round on the simulated clock; ``secure``: the secure
    aggregation round, if any; ``countersignatures``: each site's signature over the ledger
    head it was shown (witnessing, :mod:`medsilo.ledger.witness`).
    """

    sent: list[Update]
    received: list[Update]
    trained: list[str]
    timing: RoundTiming
    secure: SecureRound | None = None
    #: Fields the sites add to the round record (patient consent: docs/governance.md).
    record_fields: RoundFields = field(default_factory=dict)
    countersignatures: dict[str, Countersignature] = field(default_factory=dict)
    #: With ``evaluate_first``: the evaluation fields of the model the sites were sent (the
    #: previous round's result), as :meth:`Transport.evaluate` would have returned them.
    evaluation: RoundFields | None = None


class UpdateObserver(Protocol):
    """Sees what the coordinator holds in each round, before aggregation: ``updates`` are the
    accepted updates as decoded (masked payloads under secure aggregation), ``weights`` the
    global weights the sites trained from. It must not modify either."""

    def received(self, rnd: int, weights: Weights, updates: list[Update]) -> None: ...


class Transport(Protocol):
    """How the global model reaches the sites and their answers come back."""

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
        """Every site in ``chosen`` trains from ``weights`` (and the algorithm's payload);
        a site with a ledger head proof in ``heads`` witnesses it first. With
        ``evaluate_first`` every site first evaluates ``weights`` as :meth:`evaluate` would
        (not last), before training changes its state; sites outside ``chosen`` evaluate only;
        the fields come back in :attr:`TrainingExchange.evaluation`."""
        ...

    def evaluate(self, rnd: int, weights: Weights, last: bool) -> RoundFields:
        """The evaluation fields of the round's record (pooled and per-site metrics)."""
        ...

    def site_states(self) -> dict[str, SiteState]:
        """Site states a checkpoint holds (empty per site where the sites keep their own)."""
        ...

    def restore(self, states: dict[str, SiteState]) -> None:
        """Continue from a checkpoint's site states."""
        ...


@dataclass
class GlobalModel:
    """The coordinator's model: weights, the algorithm's server state, the server optimiser."""

    weights: Weights
    server_state: ServerState
    layout: Layout
    server_opt: ServerOptimizer = field(repr=False)

    @staticmethod
    def start(
        cfg: RunConfig, algorithm: Algorithm, initial: Weights, layout: Layout
    ) -> GlobalModel:
        weights = [w.copy() for w in initial]
        return GlobalModel(
            weights,
            algorithm.init_server_state(weights, layout),
            layout,
            build_server_optimizer(cfg.server_optimizer),
        )

    def apply(self, outcome: RoundOutcome) -> None:
        """The server step of a round that was not skipped."""
        if outcome.delta is not None:
            self.server_state = outcome.server_state
            self.weights = self.server_opt.step(self.weights, outcome.delta, self.layout)


def evaluation_due(cfg: RunConfig, rnd: int, stopping: bool) -> bool:
    """Evaluate every ``evaluation.every`` rounds, at the last round and when stopping."""
    return rnd % cfg.evaluation.every == 0 or rnd == cfg.training.rounds or stopping


@dataclass
class PendingRound:
    """A round whose record waits for its evaluation, which the next round's training
    message carries (``train_with_evaluation``); its checkpoint, taken when the round ended,
    is written only after the record, as for any round."""

    fields: RoundFields
    checkpoint: Checkpoint | None


class RoundLoop:
    """The synchronous rounds of one run (see the module docstring)."""

    def __init__(
        self,
        cfg: RunConfig,
        algorithm: Algorithm,
        names: list[str],
        layout: Layout,
        initial_weights: Weights,
        train_sizes: dict[str, int],
        on_round: RoundCallback | None = None,
        checkpoints: CheckpointWriter | None = None,
        resume: Checkpoint | None = None,
        witness: WitnessFeed | None = None,
        train_with_evaluation: bool = False,
        observer: UpdateObserver | None = None,
    ) -> None:
        cfg.sites.check_names(names)
        self.cfg = cfg
        self.algorithm = algorithm
        self.names = names
        self.layout = layout
        self.initial_weights = initial_weights
        self.train_sizes = train_sizes
        self.on_round = on_round
        self.checkpoints = checkpoints
        self.resume = resume
        self.witness = witness
        self.train_with_evaluation = train_with_evaluation
        self.observer = observer
        self.participation = Participation.of(cfg.governance, names)
        self.networks = {n: cfg.sites.record(n).network for n in names}
        self.coordinator = CoordinatorSteps(cfg, layout, len(names))

    def cohort(self, rnd: int) -> list[str]:
        t = self.cfg.training
        sampled = sample_sites(self.names, t.fraction, t.min_sites, self.cfg.seed, rnd)
        return self.participation.present(sampled)  # withdrawn/expired sites are absent

    def run(self, transport: Transport) -> tuple[GlobalModel, list[RoundRecord]]:
        cfg, algo, names = self.cfg, self.algorithm, self.names
        model = GlobalModel.start(cfg, algo, self.initial_weights, self.layout)
        total = cfg.training.rounds
        records: list[RoundRecord] = []
        sim_clock, first_round = 0.0, 1
        contributed: set[str] = set()
        absent = self.participation.absent
        if self.resume is not None:  # continue exactly where the checkpoint's round ended
            resume = self.resume
            resume.check_resumable(cfg, names, absent)
            model.weights, model.server_state = resume.weights, resume.server_state
            model.server_opt.load_state(resume.server_optimizer)
            transport.restore(resume.site_states)
            sim_clock, first_round = resume.sim_clock_s, resume.round + 1
            contributed = set(resume.contributed)
        privacy = PrivacyAccounting.build(cfg, algo, self.train_sizes)
        if privacy is not None:
            privacy.check_first_round(self.cohort(1))
            if self.resume is not None:  # the releases before the checkpoint stay spent
                privacy.restore(self.resume.privacy_state())
        pending: PendingRound | None = None
        for rnd in range(first_round, total + 1):
            t0 = time.perf_counter()
            chosen = self.cohort(rnd)
            payload = algo.broadcast(model.server_state)
            heads = self.witness.proofs(chosen) if self.witness is not None else None
            exchange = transport.train(
                rnd, chosen, model.weights, payload, sim_clock, heads, pending is not None
            )
            if pending is not None:  # the previous round's evaluation came with this exchange
                if exchange.evaluation is None:
                    raise RuntimeError("the transport did not evaluate before training")
                pending.fields.update(exchange.evaluation)
                records.append(self._close(pending.fields, pending.checkpoint))
                pending = None
            if self.witness is not None:  # the sites' signatures beside the coordinator's
                self.witness.record(rnd, exchange.countersignatures)
            sim_clock = exchange.timing.end_s
            outcome = self.coordinator.process(
                rnd,
                algo,
                model.weights,
                exchange.received,
                model.server_state,
                len(names),
                exchange.secure,
            )
            if self.observer is not None:
                self.observer.received(rnd, model.weights, outcome.accepted)
            fields = round_record(
                rnd,
                chosen,
                exchange.sent,
                model.weights,
                payload,
                {n: self.networks[n] for n in chosen},
                outcome,
            )
            fields.update(exchange.timing.fields())
            fields.update(exchange.record_fields)
            self.participation.annotate(fields, chosen)
            contributed.update(exchange.trained)
            if exchange.secure is not None:
                exchange.secure.annotate(fields)
            stop = privacy is not None and privacy.close_round(
                fields, rnd, exchange.trained, model.server_state, self.cohort, total
            )
            model.apply(outcome)
            last = rnd == total or stop
            deferred = self.train_with_evaluation and not last
            if evaluation_due(cfg, rnd, stop) and not deferred:
                fields.update(transport.evaluate(rnd, model.weights, last))
            fields.update(model_hash_field(model.weights))
            # A deferred evaluation is timed in the next round, whose exchange carries it.
            fields["wall_s"] = time.perf_counter() - t0
            checkpoint = None
            if self.checkpoints is not None and (self.checkpoints.due(rnd) or stop):
                checkpoint = Checkpoint(
                    rnd,
                    model.weights,
                    model.server_state,
                    model.server_opt.state(),
                    transport.site_states(),
                    sim_clock,
                    sorted(contributed),
                    absent,
                    self.checkpoints.hash,
                    names,
                    privacy.state() if privacy is not None else None,
                )
            if evaluation_due(cfg, rnd, stop) and deferred:
                # Later rounds replace the weights and states but may update arrays in place.
                pending = PendingRound(fields, copy.deepcopy(checkpoint))
                continue
            records.append(self._close(fields, checkpoint))
            if stop:  # the privacy budget allows no further round (record["stop_reason"])
                break
        return model, records

    def _close(self, fields: RoundFields, checkpoint: Checkpoint | None) -> RoundRecord:
        """The round's record, made durable by ``on_round``, and only then its checkpoint."""
        record = RoundRecord.from_fields(fields)
        if self.on_round is not None:  # durable before the checkpoint that depends on it
            self.on_round(record)
        if checkpoint is not None and self.checkpoints is not None:
            self.checkpoints.save(checkpoint)
        return record
