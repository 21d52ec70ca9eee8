"""The in-process engine: every site in one process, deterministic for a seed.

It drives an :class:`~medsilo.algorithms.base.Algorithm` exactly as a networked runtime
would (broadcast, local updates, aggregate, server step) but without serialisation, so it is
the fast default for research and the reference the deployed runtime is checked against.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from medsilo.algorithms.base import Algorithm, SiteState
from medsilo.asynchrony import SyncConfig
from medsilo.confidential.vulnerabilities import exploit_indicator
from medsilo.config import BASELINES, RunConfig
from medsilo.data.base import FederatedData
from medsilo.governance.checkpoint import Checkpoint, CheckpointWriter
from medsilo.governance.engine import refuse_unsupported
from medsilo.governance.participation import Participation
from medsilo.privacy.ledger import PrivacyLedger, site_training
from medsilo.runtime.clock import SimClock
from medsilo.runtime.factory import build_run_algorithm, build_server_optimizer
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.records import (
    RoundCallback,
    RoundRecord,
    attack_fields,
    broadcast_bytes,
    evaluation_fields,
    model_hash_field,
    round_record,
    update_bytes,
)
from medsilo.runtime.rounds import (
    CoordinatorSteps,
    SiteSteps,
    SiteTaskFields,
    cohort_size,
    site_round,
)
from medsilo.secure.aggregation import secure_aggregation
from medsilo.types import Update, Weights


def sample_sites(
    names: list[str], fraction: float, min_sites: int, seed: int, rnd: int
) -> list[str]:
    count = cohort_size(len(names), fraction, min_sites)
    if count >= len(names):
        return list(names)
    rng = np.random.default_rng([seed, rnd, 7919])
    chosen = rng.choice(len(names), size=count, replace=False)
    return [names[i] for i in sorted(chosen)]


@dataclass
class FederationResult:
    weights: Weights
    rounds: list[RoundRecord]
    site_states: dict[str, SiteState] = field(default_factory=dict)
    site_weights: dict[str, Weights] = field(default_factory=dict)
    wall_s: float = 0.0


def run_federation(
    cfg: RunConfig,
    fed: FederatedData | None = None,
    on_round: RoundCallback | None = None,
    prepared: PreparedFederation | None = None,
    algorithm: Algorithm | None = None,
    checkpoints: CheckpointWriter | None = None,
    resume: Checkpoint | None = None,
) -> FederationResult:
    """Run ``cfg`` to completion; ``on_round`` sees each round's record as it is made.

    ``algorithm`` overrides the one ``cfg`` names (as in the Flower apps). ``checkpoints``
    saves the state after each due round, ``resume`` starts after a checkpoint's round
    (docs/governance.md; only this synchronous engine supports either).
    """
    refuse_unsupported(cfg, checkpoints is not None or resume is not None)
    if cfg.algorithm.name in BASELINES:
        from medsilo.runtime.baselines import run_baseline

        return run_baseline(cfg, prepared or PreparedFederation.build(cfg, fed), on_round)
    prep = prepared or PreparedFederation.build(cfg, fed)
    algo = algorithm if algorithm is not None else build_run_algorithm(cfg, len(prep.fed.sites))
    if not isinstance(cfg.asynchrony, SyncConfig):
        from medsilo.runtime.asynchronous import AsyncEngine

        return AsyncEngine(cfg, prep, algo).run(on_round)
    return _Engine(cfg, prep, algo, checkpoints, resume).run(on_round)


class _Engine:
    def __init__(
        self,
        cfg: RunConfig,
        prep: PreparedFederation,
        algorithm: Algorithm,
        checkpoints: CheckpointWriter | None = None,
        resume: Checkpoint | None = None,
    ) -> None:
        self.cfg = cfg
        self.checkpoints = checkpoints  # saves the state after due rounds (docs/governance.md)
        self.resume = resume  # starts after this checkpoint's round
        self.prep = prep
        self.algorithm = algorithm
        self.server_opt = build_server_optimizer(cfg.server_optimizer)
        self.local = site_training(cfg)
        self.names = prep.fed.site_names
        self.states: dict[str, SiteState] = {n: {} for n in self.names}
        cfg.sites.check_names(self.names)
        self.participation = Participation.of(cfg.governance, self.names)
        self.site_records = {n: cfg.sites.record(n) for n in self.names}
        self.indicators = {n: exploit_indicator(r.platform) for n, r in self.site_records.items()}
        self.site_steps = SiteSteps(cfg, self.names, prep.fed.num_classes)
        self.coordinator = CoordinatorSteps(cfg, prep.layout, len(self.names))
        self.train = {n: self.site_steps.training_data(n, prep.train[n]) for n in self.names}
        self.clock = SimClock(cfg.seed, self.names, self.site_records, cfg.training.batch_size)
        self.secure = secure_aggregation(
            cfg, cohort_size(len(self.names), cfg.training.fraction, cfg.training.min_sites)
        )

    def _site_update(
        self, rnd: int, name: str, weights: Weights, payload: dict[str, Weights]
    ) -> Update:
        fields = SiteTaskFields(
            site=name,
            index=self.names.index(name),
            round=rnd,
            seed=self.cfg.seed,
            model=self.prep.model,
            layout=self.prep.layout,
            data=self.train[name],
            training=self.local,
            state=self.states[name],
            exploit_indicator=self.indicators[name],
        )
        return site_round(self.algorithm, self.site_steps, fields, weights, payload)

    def run(self, on_round: RoundCallback | None) -> FederationResult:
        cfg, prep, algo = self.cfg, self.prep, self.algorithm
        checkpoints, resume = self.checkpoints, self.resume
        weights = [w.copy() for w in prep.initial_weights]
        server_state = algo.init_server_state(weights, prep.layout)
        records: list[RoundRecord] = []
        start = time.perf_counter()
        sim_clock = 0.0
        first_round = 1
        contributed: set[str] = set()
        absent = self.participation.absent
        assert isinstance(cfg.asynchrony, SyncConfig)
        if resume is not None:  # continue exactly where the checkpoint's round ended
            resume.check_resumable(cfg, self.names, absent)
            weights, server_state = resume.weights, resume.server_state
            self.states = resume.site_states
            self.server_opt.load_state(resume.server_optimizer)
            sim_clock, first_round = resume.sim_clock_s, resume.round + 1
            contributed = set(resume.contributed)

        def cohort(rnd: int) -> list[str]:
            t = cfg.training
            sampled = sample_sites(self.names, t.fraction, t.min_sites, cfg.seed, rnd)
            return self.participation.present(sampled)  # withdrawn/expired sites are absent

        privacy = PrivacyLedger.build(cfg, algo, {n: len(prep.train[n]) for n in self.names})
        if privacy is not None:
            privacy.check_first_round(cohort(1))
        for rnd in range(first_round, cfg.training.rounds + 1):
            t0 = time.perf_counter()
            chosen = cohort(rnd)
            payload = algo.broadcast(server_state)
            dropped = self.clock.dropped(rnd, chosen)
            sent = [self._site_update(rnd, n, weights, payload) for n in chosen if n not in dropped]
            timing = self.clock.sync_round(
                sim_clock,
                chosen,
                dropped,
                broadcast_bytes(weights, payload),
                {u.site: update_bytes(u) for u in sent},
                {u.site: self.clock.examples(u) for u in sent},
                cfg.asynchrony.round_timeout_s,
            )
            sim_clock = timing.end_s
            updates = [u for u in sent if u.site in timing.on_time]
            secure = None
            if self.secure is not None:  # the coordinator gets masked payloads and sums only
                late = {u.site for u in sent} - set(timing.on_time)
                secure = self.secure.run(rnd, chosen, sent, late)
                updates = secure.updates
            outcome = self.coordinator.process(
                rnd, algo, weights, updates, server_state, len(self.names), secure
            )
            record = round_record(
                rnd,
                chosen,
                sent,
                weights,
                payload,
                {n: self.site_records[n].network for n in chosen},
                outcome,
            )
            record.update(timing.fields())
            self.participation.annotate(record, chosen)
            contributed.update(chosen)
            if secure is not None:
                secure.annotate(record)
            stop = privacy is not None and privacy.close_round(
                record, rnd, [u.site for u in sent], server_state, cohort, cfg.training.rounds
            )
            if outcome.delta is not None:
                server_state = outcome.server_state
                weights = self.server_opt.step(weights, outcome.delta, prep.layout)
            if rnd % cfg.evaluation.every == 0 or rnd == cfg.training.rounds or stop:
                record.update(self._evaluate(weights))
            record.update(model_hash_field(weights))
            record["wall_s"] = time.perf_counter() - t0
            if checkpoints is not None and (checkpoints.due(rnd) or stop):
                checkpoints.save(
                    Checkpoint(
                        rnd,
                        weights,
                        server_state,
                        self.server_opt.state(),
                        self.states,
                        sim_clock,
                        sorted(contributed),
                        absent,
                        checkpoints.hash,
                        self.names,
                    )
                )
            records.append(record)
            if on_round is not None:
                on_round(record)
            if stop:  # the privacy budget allows no further round (record["stop_reason"])
                break
        return FederationResult(
            weights=weights,
            rounds=records,
            site_states=self.states,
            site_weights=self._site_weights(weights),
            wall_s=time.perf_counter() - start,
        )

    def _site_weights(self, weights: Weights) -> dict[str, Weights]:
        return {
            n: self.algorithm.site_weights(weights, self.states[n], self.prep.layout)
            for n in self.names
        }

    def _evaluate(self, weights: Weights) -> RoundRecord:
        prep = self.prep
        fields = evaluation_fields(
            prep.model, weights, self._site_weights(weights), prep.pooled_test, prep.test
        )
        return fields | attack_fields(prep.model, weights, prep.pooled_test, self.cfg.attack)
