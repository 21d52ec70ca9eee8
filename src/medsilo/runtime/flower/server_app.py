"""The coordinator half of a federation as a Flower ServerApp.

The main loop is the in-process engine's loop with messages in between: sample sites with
:func:`sample_sites`, :meth:`Algorithm.broadcast`, one ``train`` message per sampled site,
:class:`~medsilo.runtime.rounds.CoordinatorSteps` (decoding, validation, robust
aggregation around :meth:`Algorithm.aggregate`) over the updates sorted by site index (so
floating-point sums happen in the engine's order), then the server optimiser's step unless
the round was skipped. With ``secure_aggregation`` (mechanism ``masking``) the ``train``
exchange becomes the protocol's four exchanges (:mod:`.secure_server`) and the coordinator
steps see masked payloads and the survivors' sums only, as in the engine. Evaluation rounds
send an ``evaluate`` message to every site (each evaluates its own deployable model on its
own test set) and evaluate the global model on the pooled test set here.

Results go into a :class:`FlowerRun` passed in by the caller, which it reads once
``run_simulation`` (or a deployment's ``flwr run``) has returned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flwr.app import Context, Message, MessageType, RecordDict
from flwr.serverapp import Grid, ServerApp

from medsilo.algorithms.base import Algorithm, SiteState
from medsilo.asynchrony import SyncConfig
from medsilo.config import BASELINES, RunConfig
from medsilo.governance.participation import Participation
from medsilo.privacy.ledger import PrivacyLedger
from medsilo.runtime.clock import RoundTiming, SimClock, flower_clock_problem
from medsilo.runtime.factory import build_run_algorithm, build_server_optimizer
from medsilo.runtime.flower import records as rec
from medsilo.runtime.flower.secure_server import secure_train_round
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.records import (
    RoundCallback,
    RoundRecord,
    attack_fields,
    broadcast_bytes,
    evaluate_weights,
    model_hash_field,
    round_record,
    update_bytes,
)
from medsilo.runtime.rounds import CoordinatorSteps, cohort_size
from medsilo.runtime.simulation import sample_sites
from medsilo.secure.aggregation import secure_aggregation
from medsilo.secure.result import EXTRA_SLOTS, SecureRound
from medsilo.types import Update, Weights

log = logging.getLogger(__name__)


class FlowerRunError(RuntimeError):
    """A Flower run could not complete: a site failed, did not answer, or never connected."""


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
) -> RoundRecord:
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


class _Coordinator:
    def __init__(
        self,
        cfg: RunConfig,
        prep: PreparedFederation,
        algorithm: Algorithm,
        out: FlowerRun,
        on_round: RoundCallback | None,
        reply_timeout_s: float | None,
        connect_timeout_s: float,
    ) -> None:
        self.cfg = cfg
        self.prep = prep
        self.algorithm = algorithm
        self.out = out
        self.on_round = on_round
        self.reply_timeout_s = reply_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.names = prep.fed.site_names
        cfg.sites.check_names(self.names)
        self.networks = {n: cfg.sites.record(n).network for n in self.names}
        self.clock = SimClock(
            cfg.seed,
            self.names,
            {n: cfg.sites.record(n) for n in self.names},
            cfg.training.batch_size,
        )
        self.nodes: dict[str, int] = {}
        self.secure = secure_aggregation(
            cfg, cohort_size(len(self.names), cfg.training.fraction, cfg.training.min_sites)
        )

    # --- messaging --------------------------------------------------------------------

    def _wait_for_nodes(self, grid: Grid) -> list[int]:
        deadline = time.monotonic() + self.connect_timeout_s
        while True:
            node_ids = sorted(grid.get_node_ids())
            if len(node_ids) >= len(self.names):
                return node_ids
            if time.monotonic() > deadline:
                raise FlowerRunError(
                    f"only {len(node_ids)} of {len(self.names)} sites connected within "
                    f"{self.connect_timeout_s:.0f}s (sites: {self.names})"
                )
            time.sleep(0.05)

    def _identify(self, grid: Grid) -> None:
        node_ids = self._wait_for_nodes(grid)
        messages = [
            Message(RecordDict(), dst_node_id=n, message_type=MessageType.QUERY, group_id="0")
            for n in node_ids
        ]
        replies = list(grid.send_and_receive(messages, timeout=self.reply_timeout_s))
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
        self, grid: Grid, rnd: int, message_type: str, contents: Mapping[str, RecordDict]
    ) -> dict[str, RecordDict]:
        """Send one message per site and return each site's reply content, or raise."""
        got, problems = self._send(grid, rnd, message_type, contents)
        if problems:
            raise FlowerRunError(f"round {rnd} ({message_type}): " + "; ".join(problems))
        return got

    def _exchange_tolerant(
        self, grid: Grid, rnd: int, message_type: str, contents: Mapping[str, RecordDict]
    ) -> dict[str, RecordDict]:
        """Like :meth:`_exchange`, but a site that fails or stays silent is only logged and
        left out of the replies (secure aggregation treats it as dropped)."""
        got, problems = self._send(grid, rnd, message_type, contents)
        for problem in problems:
            log.warning("round %d (%s): %s; treated as dropped", rnd, message_type, problem)
        return got

    def _send(
        self, grid: Grid, rnd: int, message_type: str, contents: Mapping[str, RecordDict]
    ) -> tuple[dict[str, RecordDict], list[str]]:
        """Send one message per site: ``(reply content per site, problems)``."""
        messages = [
            Message(
                content,
                dst_node_id=self.nodes[site],
                message_type=message_type,
                group_id=str(rnd),
            )
            for site, content in contents.items()
        ]
        replies = list(grid.send_and_receive(messages, timeout=self.reply_timeout_s))
        site_of = {node: site for site, node in self.nodes.items()}
        got: dict[str, RecordDict] = {}
        failed: set[str] = set()
        problems: list[str] = []
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
            problems.append(f"site(s) {missing} did not reply within {self.reply_timeout_s}s")
        return got, problems

    # --- the loop ---------------------------------------------------------------------

    def run(self, grid: Grid) -> None:
        cfg, prep, algo, out = self.cfg, self.prep, self.algorithm, self.out
        out.started_at = time.perf_counter()
        self._identify(grid)
        out.ready_at = time.perf_counter()
        server_opt = build_server_optimizer(cfg.server_optimizer)
        steps = CoordinatorSteps(cfg, prep.layout, len(self.names))
        weights = [w.copy() for w in prep.initial_weights]
        server_state = algo.init_server_state(weights, prep.layout)
        total = cfg.training.rounds
        sim_clock = 0.0
        assert isinstance(cfg.asynchrony, SyncConfig)  # make_server_app refuses the others

        participation = Participation.of(cfg.governance, self.names)  # docs/governance.md

        def cohort(rnd: int) -> list[str]:
            t = cfg.training
            sampled = sample_sites(self.names, t.fraction, t.min_sites, cfg.seed, rnd)
            return participation.present(sampled)  # withdrawn/expired sites are absent

        privacy = PrivacyLedger.build(cfg, algo, {n: len(prep.train[n]) for n in self.names})
        if privacy is not None:
            privacy.check_first_round(cohort(1))
        for rnd in range(1, total + 1):
            t0 = time.perf_counter()
            chosen = cohort(rnd)
            payload = algo.broadcast(server_state)
            updates, received, trained, timing, secure = self._train(
                grid, rnd, chosen, weights, payload, sim_clock
            )
            sim_clock = timing.end_s
            outcome = steps.process(
                rnd, algo, weights, received, server_state, len(self.names), secure
            )
            record = round_record(
                rnd,
                chosen,
                updates,
                weights,
                payload,
                {n: self.networks[n] for n in chosen},
                outcome,
            )
            record.update(timing.fields())
            participation.annotate(record, chosen)
            if secure is not None:
                secure.annotate(record)
            stop = privacy is not None and privacy.close_round(
                record, rnd, trained, server_state, cohort, total
            )
            if outcome.delta is not None:
                server_state = outcome.server_state
                weights = server_opt.step(weights, outcome.delta, prep.layout)
            if rnd % cfg.evaluation.every == 0 or rnd == total or stop:
                record.update(self._evaluate(grid, rnd, weights, last=rnd == total or stop))
            record.update(model_hash_field(weights))
            record["wall_s"] = time.perf_counter() - t0
            out.rounds.append(record)
            if self.on_round is not None:
                self.on_round(record)
            if stop:  # the privacy budget allows no further round (record["stop_reason"])
                break
        out.weights = weights  # site states and weights came with the last round's evaluation
        out.finished_at = time.perf_counter()

    def _train(
        self,
        grid: Grid,
        rnd: int,
        chosen: list[str],
        weights: Weights,
        payload: dict[str, Weights],
        sim_clock: float,
    ) -> tuple[list[Update], list[Update], list[str], RoundTiming, SecureRound | None]:
        """The round's training exchange(s): ``(updates as the coordinator holds them, those
        on time, sites that trained, timing, secure round or None)``."""
        assert isinstance(self.cfg.asynchrony, SyncConfig)
        timeout_s = self.cfg.asynchrony.round_timeout_s
        content = rec.broadcast_content(rnd, weights, payload)
        down = broadcast_bytes(weights, payload)

        def timing_of(
            dropped: list[str], up: Mapping[str, int], examples: Mapping[str, int]
        ) -> RoundTiming:
            # The simulated clock as in the engine (no simulated dropouts: refused here).
            return self.clock.sync_round(sim_clock, chosen, dropped, down, up, examples, timeout_s)

        if self.secure is not None:  # the coordinator gets masked payloads and sums only
            done = secure_train_round(
                self.secure,
                lambda kind, contents: self._exchange_tolerant(grid, rnd, kind, contents),
                rnd,
                chosen,
                content,
                sum(w.size for w in weights) + EXTRA_SLOTS,
                lambda dropped, clocks: timing_of(
                    dropped,
                    {s: c["clock_bytes"] for s, c in clocks.items()},
                    {s: c["clock_examples"] for s, c in clocks.items()},
                ),
            )
            masked = done.secure.updates
            return masked, masked, done.trained, done.timing, done.secure
        replies = self._exchange(grid, rnd, MessageType.TRAIN, {site: content for site in chosen})
        updates = [rec.content_to_update(replies[site]) for site in chosen]
        for site, update in zip(chosen, updates, strict=True):
            if update.site != site:
                raise FlowerRunError(
                    f"round {rnd}: node of site {site!r} answered as {update.site!r}"
                )
        updates.sort(key=lambda u: self.names.index(u.site))
        timing = timing_of(
            [],
            {u.site: update_bytes(u) for u in updates},
            {u.site: self.clock.examples(u) for u in updates},
        )
        on_time = [u for u in updates if u.site in timing.on_time]
        return updates, on_time, [u.site for u in updates], timing, None

    def _evaluate(self, grid: Grid, rnd: int, weights: Weights, last: bool) -> RoundRecord:
        content = rec.broadcast_content(rnd, weights, return_state=last)
        replies = self._exchange(
            grid, rnd, MessageType.EVALUATE, {site: content for site in self.names}
        )
        per_site = {site: rec.read_eval(replies[site]) for site in self.names}
        pooled = evaluate_weights(self.prep.model, weights, self.prep.pooled_test).as_dict()
        if last:
            self.out.site_states = {
                site: rec.records_to_named_weights(replies[site], rec.STATE_PREFIX)
                for site in self.names
            }
            self.out.site_weights = {
                site: self.algorithm.site_weights(weights, state, self.prep.layout)
                for site, state in self.out.site_states.items()
            }
        attack = attack_fields(self.prep.model, weights, self.prep.pooled_test, self.cfg.attack)
        return evaluation_record(pooled, per_site) | attack


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
            "governance.checkpoint is written by the in-process engine only; the Flower "
            "ServerApp does not checkpoint (remove governance.checkpoint)"
        )
    if cfg.secure_aggregation.enabled and cfg.secure_aggregation.mechanism != "masking":
        raise ValueError(
            f"secure_aggregation.mechanism {cfg.secure_aggregation.mechanism!r} runs in the "
            "in-process engine only (its key holder is not a Flower node); the Flower runtime "
            "supports mechanism 'masking'"
        )
    algo = algorithm if algorithm is not None else build_run_algorithm(cfg, len(prepared.fed.sites))
    coordinator_args = (cfg, prepared, algo, out, on_round, reply_timeout_s, connect_timeout_s)
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        _Coordinator(*coordinator_args).run(grid)

    return app
