"""The in-process transport: every site in this process, no serialisation.

It is the fast default for research and the reference the Flower runtimes are checked
against: the sites' work is the same :func:`~medsilo.runtime.rounds.site_round` a Flower
ClientApp runs, and the round around it is :class:`~medsilo.runtime.federation.RoundLoop`
(synchronous) or :class:`~medsilo.runtime.asynchronous.AsyncEngine` (event-driven).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from medsilo.algorithms.base import Algorithm, SiteState
from medsilo.asynchrony import SyncConfig
from medsilo.confidential.vulnerabilities import exploit_indicator
from medsilo.config import RunConfig
from medsilo.governance.patient_consent import PatientConsent
from medsilo.runtime.clinical import ClinicalMetrics
from medsilo.runtime.clock import SimClock
from medsilo.runtime.cohorts import cohort_size
from medsilo.runtime.factory import site_training
from medsilo.runtime.federation import TrainingExchange
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.records import (
    attack_fields,
    broadcast_bytes,
    evaluation_fields,
    update_bytes,
)
from medsilo.runtime.round_record import RoundFields
from medsilo.runtime.rounds import SiteSteps, SiteTaskFields, site_round
from medsilo.secure.aggregation import secure_aggregation
from medsilo.types import Update, Weights

if TYPE_CHECKING:
    from medsilo.ledger.engine_witnesses import SimulatedSites
    from medsilo.ledger.witness import HeadProof


class InProcessSites:
    """Every site of a prepared federation, trained and evaluated in this process
    (``witnesses``: the simulated sites that witness the audit ledger's head each round)."""

    def __init__(
        self,
        cfg: RunConfig,
        prep: PreparedFederation,
        algorithm: Algorithm,
        witnesses: SimulatedSites | None = None,
    ) -> None:
        self.cfg = cfg
        self.witnesses = witnesses
        self.prep = prep
        self.algorithm = algorithm
        self.local = site_training(cfg)
        self.names = prep.fed.site_names
        self.states: dict[str, SiteState] = {n: {} for n in self.names}
        self.site_records = {n: cfg.sites.record(n) for n in self.names}
        self.indicators = {n: exploit_indicator(r.platform) for n, r in self.site_records.items()}
        self.site_steps = SiteSteps(cfg, self.names, prep.fed.num_classes)
        self.train_data = {n: self.site_steps.training_data(n, prep.train[n]) for n in self.names}
        self.clock = SimClock(cfg.seed, self.names, self.site_records, cfg.training.batch_size)
        self.clinical = ClinicalMetrics.of(cfg, prep.fed.task)
        self.secure = secure_aggregation(
            cfg, cohort_size(len(self.names), cfg.training.fraction, cfg.training.min_sites)
        )
        self.patients = PatientConsent.of(cfg, self.train_sizes)  # docs/governance.md
        #: Whose test sets :meth:`evaluate` scores: every site, or (``evaluation.sites:
        #: cohort``) the sites the last round sampled (docs/scale.md).
        self.evaluated: list[str] = self.names

    @property
    def train_sizes(self) -> dict[str, int]:
        return {n: len(self.prep.train[n]) for n in self.names}

    def site_update(
        self, key: int, name: str, weights: Weights, payload: dict[str, Weights]
    ) -> Update:
        """One site's local round; ``key`` seeds it (the round, or the async dispatch)."""
        fields = SiteTaskFields(
            site=name,
            index=self.names.index(name),
            round=key,
            seed=self.cfg.seed,
            model=self.prep.model,
            layout=self.prep.layout,
            data=self.patients.training_data(name, key, self.train_data[name]),
            training=self.local,
            state=self.states[name],
            exploit_indicator=self.indicators[name],
        )
        return site_round(self.algorithm, self.site_steps, fields, weights, payload)

    # --- Transport ------------------------------------------------------------------------

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
        assert isinstance(self.cfg.asynchrony, SyncConfig)
        # Before any site trains, as a deployed site evaluates what it receives.
        evaluation = self.evaluate(rnd - 1, weights, False) if evaluate_first else None
        if self.cfg.evaluation.sites == "cohort":
            self.evaluated = chosen
        idle = self.patients.without_patients(rnd, chosen)  # no consenting patient
        working = [n for n in chosen if n not in idle]
        dropped = self.clock.dropped(rnd, working)
        countersignatures = {}
        if heads and self.witnesses is not None:  # before training, as a site would
            reached = {n: heads[n] for n in working if n not in dropped and n in heads}
            countersignatures = self.witnesses.countersign(reached)
        sent = [self.site_update(rnd, n, weights, payload) for n in working if n not in dropped]
        timing = self.clock.sync_round(
            sim_clock_s,
            working,
            dropped,
            broadcast_bytes(weights, payload),
            {u.site: update_bytes(u) for u in sent},
            {u.site: self.clock.examples(u) for u in sent},
            self.cfg.asynchrony.round_timeout_s,
        )
        received = [u for u in sent if u.site in timing.on_time]
        secure = None
        if self.secure is not None:  # the coordinator gets masked payloads and sums only
            late = {u.site for u in sent} - set(timing.on_time)
            secure = self.secure.run(rnd, working, sent, late)
            received = secure.updates
        trained = [u.site for u in sent]
        consent = self.patients.fields(rnd, trained + idle)
        return TrainingExchange(
            sent,
            received,
            trained,
            timing,
            secure,
            record_fields=consent,
            countersignatures=countersignatures,
            evaluation=evaluation,
        )

    def evaluate(self, rnd: int, weights: Weights, last: bool) -> RoundFields:
        prep, names = self.prep, self.evaluated
        fields = evaluation_fields(
            prep.model,
            weights,
            self.site_weights(weights, names),
            prep.pooled_test,
            {n: prep.test[n] for n in names},
        )
        if self.clinical is not None:
            reports = {n: self.clinical.report_for(prep, n, weights, last) for n in names}
            fields |= self.clinical.fields(reports)
        return fields | attack_fields(prep.model, weights, prep.pooled_test, self.cfg.attack)

    def site_states(self) -> dict[str, SiteState]:
        return self.states

    def restore(self, states: dict[str, SiteState]) -> None:
        self.states = states

    # --- results --------------------------------------------------------------------------

    def site_weights(self, weights: Weights, names: list[str] | None = None) -> dict[str, Weights]:
        """Each site's deployable model (personalised algorithms keep local parts), of
        ``names`` or of every site."""
        return {
            n: self.algorithm.site_weights(weights, self.states[n], self.prep.layout)
            for n in (self.names if names is None else names)
        }
