"""The coordinator half of a deployed federation: the ServerApp ``flwr run`` starts.

``medsilo coordinator start KIT --config EXP.yaml --out RUN`` runs a SuperLink and submits
this app with a run config naming the experiment file, the coordinator kit and the run
folder (:class:`DeployedRunConfig`); the SuperLink starts it in a ``flwr-serverapp``
process on the coordinator machine, which is why it may read those paths.

Order of events:

1. wait (``connect_timeout_s``) until every roster site's SuperNode is connected (Flower
   already refused nodes whose key is not registered), or go on with those connected if they
   are at least ``training.min_sites``;
2. enrolment: with a kit council, the council's ``start_run`` approval (checked when the app
   starts) is consumed now, the run's real beginning, and sent with the requests, so any
   failure before (e.g. no site connected in time) leaves it for the next attempt
   (docs/governance.md); each node gets a fresh nonce and the run config; its answer carries
   attestation evidence, which :func:`medsilo.attestation.policy.enrol` checks against the
   kit's enrolment policy, the site's registered attestation key and the vulnerability
   registry; a site the council removed (:mod:`medsilo.governance.membership`) is refused
   with the decision named, and a site the CA revoked (:mod:`medsilo.deploy.revocation`)
   with the revocation named; every decision goes to the run's audit ledger and
   ``enrolment.json``, and the site is told (a refused site logs why and gets no training
   message);
3. federated standardisation when the config asks for it: the moments come with the
   enrolment replies, the mean and std go out with the admission;
4. the rounds: :func:`~medsilo.runtime.flower.server_app.run_coordinator` in tolerant mode
   (a site that dies or stays silent past the round timeout, or past the straggler timeout
   once ``training.min_sites`` sites have replied, is dropped from that round) with a
   short reply poll and train-with-evaluation (a round's evaluation rides on the next round's
   ``train`` message, so a round is one exchange; the last round evaluates in one more);
   once a round's record is complete it is appended to ``rounds.jsonl`` and the ledger, and
   only then the checkpoint is written, so a crash between the two redoes that round on
   resume and never loses or duplicates a record;
5. ``summary.json``, ``final_weights.npz`` and the ledger's ``run_end``, whose head every
   admitted site then witnesses (a ``query.witness`` message; during the rounds the head
   rides on each ``train`` message, docs/audit-ledger.md). Countersignatures are ledgered
   under each admitted site's enrolled attestation key only, pinned after enrolment in
   ``RUN/witness_keys.json``.

Resume (``resume = true``): the newest checkpoint in ``RUN/checkpoints`` is loaded (a
corrupted or foreign one is refused, :mod:`medsilo.governance.checkpoint`), records after its
round are dropped from ``rounds.jsonl`` and the sites restore their state of that round.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from flwr.app import Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

from medsilo.anchor.run_anchor import open_anchor
from medsilo.asynchrony import SyncConfig
from medsilo.attestation.evidence import Evidence
from medsilo.attestation.nonces import NonceBook
from medsilo.attestation.policy import EnrolmentDecision, enrol, load_policy
from medsilo.config import ConfigError, RunConfig, dump_config, load_config
from medsilo.data.base import Task
from medsilo.data.standardize import Moments, combine
from medsilo.deploy.kit_files import load_attestation_keys, load_roster
from medsilo.deploy.object_pulls import COORDINATOR_PULLS, shorten_first_retry
from medsilo.deploy.revocation import load_revocations, record_revocation
from medsilo.deploy.superlink_state import node_ids
from medsilo.experiment import json_default
from medsilo.governance.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointWriter,
    checkpoint_path,
    checkpoint_rounds,
    deployed_checkpoints,
    load_checkpoint,
)
from medsilo.governance.membership import kit_removals, record_removal
from medsilo.governance.participation import Participation
from medsilo.governance.patient_consent import refuse_outside_engine
from medsilo.governance.record_kinds import DECISION_KIND
from medsilo.governance.run_gate import kit_run_approval, run_decision_json
from medsilo.ledger.digest import config_sha256
from medsilo.ledger.events import Enrolment, record_enrolment
from medsilo.ledger.keys import fingerprint
from medsilo.ledger.run_ledger import RunLedger
from medsilo.ledger.witness import Countersignature, HeadProof
from medsilo.ledger.witness_feed import Exchange
from medsilo.ledger.witness_keys import WitnessKeys
from medsilo.models.builder import build_model
from medsilo.models.local_weights import file_sha256
from medsilo.models.weights import Layout, get_weights
from medsilo.run_summary import final_fields, rejection_fields
from medsilo.runtime.cohorts import refuse_cohort_evaluation
from medsilo.runtime.factory import build_run_algorithm
from medsilo.runtime.flower import enrolment_records as wire
from medsilo.runtime.flower import witness_records as witness_wire
from medsilo.runtime.flower.ckks_server import ckks_problem
from medsilo.runtime.flower.packed_content import PackedGrid
from medsilo.runtime.flower.server_app import (
    CoordinatorOptions,
    CoordinatorView,
    FlowerRun,
    FlowerRunError,
    countersignatures,
    run_coordinator,
    send_and_collect,
    wait_for_nodes,
)
from medsilo.runtime.flower.straggler import StragglerDeadline, straggler_problem
from medsilo.runtime.round_record import RoundRecord, json_line, parse_rounds, read_rounds
from medsilo.runtime.rounds import updates_needed

log = logging.getLogger(__name__)

ROUNDS_FILE = "rounds.jsonl"
ENROLMENT_FILE = "enrolment.json"
#: Where a deployed run's pinned witness keys come from (``RUN/witness_keys.json``).
ENROLLED_KEYS = "enrolment: each admitted site's attestation key, KIT/site-keys/<site>.attest.pub"


@dataclass(frozen=True)
class DeployedRunConfig:
    """The ``flwr run --run-config`` keys this app reads (all set by the coordinator CLI)."""

    experiment: Path
    kit: Path
    run_dir: Path
    resume: bool = False
    round_timeout_s: float = 600.0
    connect_timeout_s: float = 300.0
    poll_interval_s: float = 0.1
    #: Sites that must be connected and admitted before round 1 (0: every roster site).
    min_sites: int = 0
    #: A round's evaluation rides on the next round's ``train`` message (one exchange per
    #: round); ``False`` evaluates in an exchange of its own (for comparison).
    train_with_evaluation: bool = True
    #: Once a round exchange has its minimum replies, seconds to wait for the rest before
    #: dropping them (``None``: wait up to the round timeout, :mod:`.straggler`).
    straggler_timeout_s: float | None = None

    @property
    def setup_timeout_s(self) -> float:
        """How long the set-up exchanges (enrolment, moments, admission) wait for a site: a
        site's first messages are its slowest (Flower installs the app, the site loads and
        prepares its data), so they get the connect timeout, not only a round's."""
        return max(self.round_timeout_s, self.connect_timeout_s)

    @staticmethod
    def from_context(run_config: Any) -> DeployedRunConfig:
        def need(key: str) -> str:
            value = run_config.get(key)
            if not isinstance(value, str) or not value:
                raise ConfigError(f"run config key {key!r} is missing (got {dict(run_config)})")
            return value

        straggler = run_config.get("straggler-timeout")
        return DeployedRunConfig(
            experiment=Path(need("experiment")),
            kit=Path(need("kit")),
            run_dir=Path(need("run-dir")),
            resume=bool(run_config.get("resume", False)),
            round_timeout_s=float(run_config.get("round-timeout", 600.0)),
            connect_timeout_s=float(run_config.get("connect-timeout", 300.0)),
            poll_interval_s=float(run_config.get("poll-interval", 0.1)),
            min_sites=int(run_config.get("min-sites", 0)),
            train_with_evaluation=bool(run_config.get("train-with-evaluation", True)),
            straggler_timeout_s=(
                None if straggler is None else float(straggler)  # an absent key: no deadline
            ),
        )

    def as_run_config(self) -> dict[str, str | float | bool]:
        keys: dict[str, str | float | bool] = {
            "experiment": str(self.experiment),
            "kit": str(self.kit),
            "run-dir": str(self.run_dir),
            "resume": self.resume,
            "round-timeout": self.round_timeout_s,
            "connect-timeout": self.connect_timeout_s,
            "poll-interval": self.poll_interval_s,
            "min-sites": self.min_sites,
            "train-with-evaluation": self.train_with_evaluation,
        }
        if self.straggler_timeout_s is not None:  # a run config holds no None: absent = none
            keys["straggler-timeout"] = self.straggler_timeout_s
        return keys


def run_key(run_dir: Path, cfg: RunConfig) -> str:
    """Names this run's site state on disk: the run folder and the config it runs."""
    text = f"{run_dir.resolve()}\n{cfg.model_dump_json()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _append(path: Path, record: RoundRecord) -> None:
    with path.open("a") as out:
        out.write(json_line(record))
        out.flush()
        os.fsync(out.fileno())


def _records_up_to(path: Path, last_round: int | None) -> list[RoundRecord]:
    """Round records of rounds <= ``last_round`` (every one with ``None``); a torn last line
    is dropped."""
    if not path.exists():
        return []
    return [r for r in read_rounds(path) if last_round is None or r.round <= last_round]


def _lines_up_to(path: Path, last_round: int) -> list[str]:
    """The lines of :func:`_records_up_to`, exactly as they were written."""
    if not path.exists():
        return []
    text = path.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    records = parse_rounds(text, path)  # checked; a torn last line is not a record
    return [line for line, r in zip(lines, records, strict=False) if r.round <= last_round]


def resumable_checkpoint(
    run_dir: Path, cfg: RunConfig, sites: list[str], resume: bool
) -> Checkpoint | None:
    """The checkpoint a run in ``run_dir`` continues from, checked; nothing is written.

    Without ``resume`` a folder that already holds rounds is refused (never overwritten).
    With it, the newest checkpoint must load (complete, SHA-256 intact) and belong to this
    config and roster; a folder without any checkpoint starts at round 1 unless it has
    rounds (then something is wrong and it is refused).
    """
    rounds = checkpoint_rounds(run_dir / "checkpoints")
    if not resume:
        if (run_dir / ROUNDS_FILE).exists() or rounds:
            raise ConfigError(
                f"{run_dir} already holds a run; resume it with --resume or choose another --out"
            )
        return None
    if not rounds:
        if (run_dir / ROUNDS_FILE).exists():
            raise CheckpointError(f"{run_dir} has rounds but no checkpoint to resume from")
        return None  # nothing completed yet: start from round 1
    ckpt = load_checkpoint(checkpoint_path(run_dir / "checkpoints", rounds[-1]))
    ckpt.check_resumable(cfg, sites, Participation.of(cfg.governance, sites).absent)
    return ckpt


def prepare_run_dir(
    settings: DeployedRunConfig, cfg: RunConfig, sites: list[str]
) -> Checkpoint | None:
    """Create ``run_dir`` or, with ``resume``, load its newest checkpoint and drop the
    records of later rounds (they are redone)."""
    run_dir = settings.run_dir
    ckpt = resumable_checkpoint(run_dir, cfg, sites, settings.resume)
    if ckpt is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(dump_config(cfg))
        (run_dir / ROUNDS_FILE).unlink(missing_ok=True)
        return None
    kept = _lines_up_to(run_dir / ROUNDS_FILE, ckpt.round)
    tmp = run_dir / f".{ROUNDS_FILE}.tmp"
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, run_dir / ROUNDS_FILE)
    return ckpt


def last_stopped(records: list[RoundRecord]) -> bool:
    """Whether the run ended early on purpose (the privacy budget), not by interruption."""
    return bool(records) and records[-1].stop_reason is not None


class _Deployment:
    def __init__(self, settings: DeployedRunConfig) -> None:
        self.settings = settings
        self.cfg = load_config(settings.experiment)
        refuse_outside_engine(self.cfg, "a deployed coordinator")  # docs/governance.md
        refuse_cohort_evaluation(self.cfg.evaluation.sites, "a deployed coordinator")
        problem = straggler_problem(self.cfg, settings.straggler_timeout_s)
        if problem is not None:
            raise ConfigError(problem)
        if settings.resume and not isinstance(self.cfg.asynchrony, SyncConfig):
            raise ConfigError(
                f"asynchrony.mode {self.cfg.asynchrony.mode!r}: an asynchronous run cannot be "
                "resumed (it keeps no checkpoints: there is no round boundary to resume at)"
            )
        roster = load_roster(settings.kit)
        self.names = list(roster.sites)
        hospitals = getattr(self.cfg.data, "hospitals", None)
        if hospitals is not None and list(hospitals) != self.names:
            raise ConfigError(
                f"the experiment's data.hospitals {list(hospitals)} differ from the "
                f"federation's sites {self.names} (same names, same order)"
            )
        problem = ckks_problem(self.cfg, self.names)
        if problem is not None:
            raise ConfigError(problem)
        self.policy = load_policy(settings.kit / "enrolment-policy.yaml")
        self.keys = load_attestation_keys(settings.kit)
        # the council's approval: checked now, consumed when the run begins (_begin_run)
        self.approval = None if settings.resume else kit_run_approval(settings.kit, self.cfg)
        self.decision_json = run_decision_json(settings.kit, self.cfg) if settings.resume else ""
        self.removed = kit_removals(settings.kit)  # sites the council removed: refused
        self.revoked = load_revocations(settings.kit)  # keys the CA revoked: refused
        # site -> node id its SuperNode key was registered under (the SuperLink proved the
        # node holds that key): a node claiming another site is refused at enrolment
        self.registered = node_ids(settings.run_dir)
        self.resume = prepare_run_dir(settings, self.cfg, self.names)
        anchor = open_anchor(  # docs/anchoring.md
            self.cfg.anchor, config_sha256(self.cfg), self.names, self.resume is not None
        )
        self.ledger = RunLedger(settings.run_dir, self.cfg, self.names, self.resume, anchor=anchor)
        self.nodes: dict[str, int] = {}
        self.decisions: dict[str, dict[str, Any]] = {}
        self.weights_sha256: str | None = None

    # --- set-up ---------------------------------------------------------------------------

    def _poll(self) -> float:
        return self.settings.poll_interval_s

    def _floor(self) -> int:
        """How many sites must be admitted before training starts."""
        members = len(self.names) - len(set(self.removed) | set(self.revoked))
        wanted = self.settings.min_sites or members
        return max(1, self.cfg.training.min_sites, min(wanted, members))

    def enrol_sites(self, grid: Grid) -> dict[str, wire.Enrolled]:
        floor = self._floor()
        node_ids = wait_for_nodes(
            grid,
            len(self.names) - len(self.revoked),  # their keys are not registered
            floor,
            self.settings.connect_timeout_s,
            self._poll(),
            f"; {floor} needed (--min-sites)",
        )
        self._begin_run()
        nonces = {node: secrets.token_hex(32) for node in node_ids}
        resume_round = self.resume.round if self.resume is not None else 0
        key = run_key(self.settings.run_dir, self.cfg)
        messages = [
            Message(
                wire.enrol_content(
                    wire.EnrolRequest(
                        nonce=nonces[node],
                        config_json=self.cfg.model_dump_json(),
                        roster=self.names,
                        run_key=key,
                        resume_round=resume_round,
                        decision_json=self.decision_json,
                    )
                ),
                dst_node_id=node,
                message_type=wire.ACTIONS[wire.ENROL],
                group_id="enrol",
            )
            for node in node_ids
        ]
        replies = send_and_collect(grid, messages, self.settings.setup_timeout_s, self._poll())
        admitted: dict[str, wire.Enrolled] = {}
        moments: dict[str, Moments] = {}  # federated standardisation: with the enrolment
        answers: list[tuple[int, wire.Admission]] = []
        book = NonceBook()
        for reply in replies:
            node = reply.metadata.src_node_id
            if reply.has_error():
                self._refuse(node, None, f"enrolment failed at the site: {reply.error.reason}")
                continue
            enrolled = wire.read_enrolled(reply.content)
            decision = self._decide(node, enrolled, nonces[node], book)
            answers.append(
                (
                    node,
                    wire.Admission(decision.accepted, decision.reason, decision.exploit_indicator),
                )
            )
            if decision.accepted:
                admitted[enrolled.site] = enrolled
                self.nodes[enrolled.site] = node
                if self.cfg.data.standardize == "federated":
                    moments[enrolled.site] = Moments(*wire.read_moments(reply.content))
        self._ledger_absent_revocations()
        self._check_data(admitted)
        standardize = self._standardize(moments)
        admission = [
            Message(
                wire.admission_content(answer, standardize if answer.accepted else None),
                dst_node_id=node,
                message_type=wire.ACTIONS[wire.ADMISSION],
                group_id="enrol",
            )
            for node, answer in answers
        ]
        send_and_collect(grid, admission, self.settings.setup_timeout_s, self._poll())
        (self.settings.run_dir / ENROLMENT_FILE).write_text(
            json.dumps(self.decisions, indent=2, default=json_default)
        )
        if len(admitted) < floor:
            raise FlowerRunError(
                f"only {len(admitted)} site(s) admitted ({sorted(admitted)}), {floor} needed "
                f"(--min-sites); see {self.settings.run_dir / ENROLMENT_FILE}"
            )
        return admitted

    def _begin_run(self) -> None:
        """Consume the council's approval (module docstring, step 2): the sites are
        connected and about to receive it; the run's ledger records it after ``run_start``."""
        if self.approval is not None:
            self.decision_json = json.dumps(self.approval.consume().payload(), sort_keys=True)
        if self.decision_json and self.resume is None:  # the council's approval, on record
            self.ledger.ledger.append(DECISION_KIND, json.loads(self.decision_json))

    def _refuse(self, node: int, site: str | None, reason: str, *, ledgered: bool = False) -> None:
        """Turn ``node`` away before attestation: logged, in ``enrolment.json`` (under the
        claimed name unless that name already has a decision, e.g. a duplicate) and, unless
        ``ledgered`` already, in the audit ledger as an ``enrolment`` record ``refused``."""
        log.error("enrolment REFUSED for node %s (site %s): %s", node, site, reason)
        key = site if site is not None and site not in self.decisions else f"node-{node}"
        self.decisions[key] = {"node": node, "site": site, "accepted": False, "reason": reason}
        if not ledgered:
            refusal = Enrolment(
                site=site or f"node-{node}",
                public_key_sha256="",
                action="refused",
                details={"node": node, "reason": reason},
            )
            record_enrolment(self.ledger.ledger, refusal)

    def _decide(
        self, node: int, enrolled: wire.Enrolled, nonce: str, book: NonceBook
    ) -> EnrolmentDecision:
        site = enrolled.site
        problem = None
        if site not in self.names:
            problem = f"site {site!r} is not in the federation {self.names}"
        elif site in self.registered and self.registered[site] != node:
            # before the duplicate check: a node holding another site's key is named as such
            # whichever of the two claimants replied first
            holder = {n: s for s, n in self.registered.items()}.get(node, "no site")
            problem = (
                f"node {node} claims site {site!r} but presents the node key of {holder} "
                f"({site!r}'s key is registered as node {self.registered[site]})"
            )
        elif site in self.nodes:
            problem = f"a second node claims to be site {site!r}"
        elif self.names.index(site) != enrolled.index:
            problem = f"site {site!r} claims index {enrolled.index}"
        try:
            evidence = Evidence.model_validate_json(enrolled.evidence_json)
        except ValueError as err:
            problem = problem or f"malformed attestation evidence: {err}"
        if problem is None and evidence.site != site:
            problem = f"evidence is for site {evidence.site!r}, the node says {site!r}"
        removed = problem is None and site in self.removed
        if removed:
            problem = self.removed[site].reason()
            record_removal(self.ledger.ledger, self.removed[site], self.keys.get(site))
        revoked = problem is None and site in self.revoked
        if revoked:
            problem = self.revoked[site].explain(site)
            self._ledger_revocation(site, node)
        if problem is not None:
            self._refuse(node, site, problem, ledgered=removed or revoked)
            return EnrolmentDecision(site, False, problem, "", "", "", "")
        book.expect(site, nonce)
        decision = enrol(evidence, self.policy, book, self.keys, ledger=self.ledger.ledger)
        entry = {"node": node, "accepted": decision.accepted, "reason": decision.reason}
        self.decisions[site] = entry | decision.details()
        if decision.accepted:
            log.info("site %s admitted: %s", site, decision.reason)
        else:
            log.error("enrolment REFUSED for site %s (node %s): %s", site, node, decision.reason)
        return decision

    def _ledger_revocation(self, site: str, node: int | None) -> None:
        key = self.keys.get(site)
        attest = fingerprint(key) if key is not None else ""
        record_revocation(self.ledger.ledger, site, self.revoked[site], node, attest)

    def _ledger_absent_revocations(self) -> None:
        """Revoked sites no node tried to enrol as: their keys are not registered, so the
        SuperLink refused them; the run's ledger still says they are revoked."""
        tried = {entry.get("site") for entry in self.decisions.values()} | set(self.decisions)
        for site in self.revoked:
            if site not in tried:
                self._ledger_revocation(site, None)

    def _check_data(self, admitted: dict[str, wire.Enrolled]) -> None:
        shapes = {(e.input_shape, e.num_classes, e.task) for e in admitted.values()}
        if len(shapes) > 1:
            raise FlowerRunError(
                "sites disagree on the data layout (input shape, classes, task): "
                + "; ".join(
                    f"{s}: {e.input_shape}, {e.num_classes}, {e.task}" for s, e in admitted.items()
                )
            )

    def _standardize(self, moments: dict[str, Moments]) -> tuple[np.ndarray, np.ndarray] | None:
        """The federation's mean and std from the admitted sites' moments (they came with
        the enrolment replies); ``None`` unless the config standardises federatedly."""
        if self.cfg.data.standardize != "federated" or not moments:
            return None
        # Summed in roster order, as the in-process engine does.
        return combine([moments[s] for s in self.names if s in moments])

    # --- rounds ---------------------------------------------------------------------------

    def view(self, admitted: dict[str, wire.Enrolled]) -> CoordinatorView:
        first = next(iter(admitted.values()))
        model = build_model(
            self.cfg.model,
            first.input_shape,
            first.num_classes,
            task=cast(Task, first.task),  # the site's FederatedData.task, sent as text
            seed=self.cfg.seed,
        )
        return CoordinatorView(
            names=self.names,
            model=model,
            layout=Layout.of(model),
            initial_weights=get_weights(model),
            train_sizes={n: admitted[n].n_train if n in admitted else 0 for n in self.names},
            pooled_test=None,
            task=first.task,
        )

    def pin_witness_keys(self, admitted: Mapping[str, object]) -> None:
        """Countersignatures are ledgered under each admitted site's enrolled attestation key
        only, naming this run's key (:mod:`medsilo.ledger.witness_keys`)."""
        keys = {site: self.keys[site] for site in admitted}
        pins = WitnessKeys.of(run_key(self.settings.run_dir, self.cfg), ENROLLED_KEYS, keys)
        try:
            self.ledger.feed.pin(pins.write(self.settings.run_dir))
        except ValueError as err:
            raise FlowerRunError(str(err)) from None

    def run(self, grid: Grid) -> FlowerRun:
        admitted = self.enrol_sites(grid)
        self.pin_witness_keys(admitted)
        out = FlowerRun()
        rounds_path = self.settings.run_dir / ROUNDS_FILE
        start = time.perf_counter()

        def on_round(record: RoundRecord) -> None:
            _append(rounds_path, record)
            self.ledger.round(record)
            dropped = record.dropped or []
            log.info(
                "round %d/%d: %d update(s)%s%s",
                record.round,
                self.cfg.training.rounds,
                len(record.sites) - len(dropped),
                f", dropped {dropped}" if dropped else "",
                f", accuracy {record.test.accuracy:.4f}" if record.test is not None else "",
            )

        settings = deployed_checkpoints(self.cfg)
        options = CoordinatorOptions(
            reply_timeout_s=self.settings.round_timeout_s,
            connect_timeout_s=self.settings.connect_timeout_s,
            tolerant=True,
            poll_interval_s=self._poll(),
            straggler_timeout_s=self.settings.straggler_timeout_s,
            nodes=dict(self.nodes),
            checkpoints=CheckpointWriter(self.settings.run_dir / "checkpoints", self.cfg, settings),
            resume=self.resume,
            witness=self.ledger.feed,
            train_with_evaluation=self.settings.train_with_evaluation,  # docs/deployment.md
        )
        algorithm = build_run_algorithm(self.cfg, len(self.names))
        weights = self.cfg.model.weights_path  # read by view's model; in summary.json
        self.weights_sha256 = None if weights is None else file_sha256(weights)
        run_coordinator(grid, self.cfg, self.view(admitted), algorithm, out, on_round, options)
        assert out.weights is not None
        # An asynchronous run's records are its aggregations, however many there were.
        last = self.cfg.training.rounds if isinstance(self.cfg.asynchrony, SyncConfig) else None
        records = _records_up_to(rounds_path, last)
        self._finish(out, records, time.perf_counter() - start, admitted)
        self.ledger.end(out.weights, records[-1] if records else None, self._witnesses(grid))
        return out

    def _witnesses(self, grid: Grid) -> Exchange:
        """How the sites witness the head after ``run_end``: one ``query.witness`` each."""

        def exchange(proofs: Mapping[str, HeadProof]) -> dict[str, Countersignature]:
            connected = set(grid.get_node_ids())
            messages = [
                Message(
                    witness_wire.with_head(RecordDict(), proof),
                    dst_node_id=self.nodes[site],
                    message_type=witness_wire.WITNESS_ACTION,
                    group_id="witness",
                )
                for site, proof in proofs.items()
                if self.nodes.get(site) in connected
            ]
            straggler = None  # a hung site must not hold the run's end for a round timeout
            if self.settings.straggler_timeout_s is not None and messages:
                nodes = frozenset(m.metadata.dst_node_id for m in messages)
                quorum = min(updates_needed(self.cfg), len(nodes))
                straggler = StragglerDeadline(self.settings.straggler_timeout_s, quorum, nodes)
            replies = send_and_collect(
                grid, messages, self.settings.round_timeout_s, self._poll(), straggler
            )
            site_of = {node: site for site, node in self.nodes.items()}
            answered = {}
            for reply in replies:
                site = site_of.get(reply.metadata.src_node_id, "?")
                if reply.has_error():
                    log.error(
                        "site %s did not witness the final head: %s", site, reply.error.reason
                    )
                else:
                    answered[site] = reply.content
            return countersignatures("after run_end", answered)

        return exchange

    def _finish(
        self, out: FlowerRun, records: list[RoundRecord], wall_s: float, admitted: dict[str, Any]
    ) -> None:
        assert out.weights is not None
        last = records[-1] if records else None
        summary: dict[str, Any] = {
            "name": self.cfg.name,
            "runtime": "flower-deployment",
            "algorithm": self.cfg.algorithm.name,
            "dataset": self.cfg.data.dataset,
            "model": self.cfg.model.source,
            "model_weights_sha256": self.weights_sha256,
            "sites": self.names,
            "admitted": sorted(admitted),
            "seed": self.cfg.seed,
            "rounds": self.cfg.training.rounds,
            "rounds_completed": len(records),
            "resumed_after_round": self.resume.round if self.resume is not None else None,
            "bytes_up_total": sum(r.bytes_up for r in records),
            "bytes_down_total": sum(r.bytes_down for r in records),
            "wall_s": wall_s,
            "seconds_per_round": [r.wall_s for r in records],
            "complete": len(records) == self.cfg.training.rounds or last_stopped(records),
        }
        summary.update(final_fields(last))
        summary.update(rejection_fields(records, self.cfg.training.max_rejected_fraction))
        run_dir = self.settings.run_dir
        np.savez(run_dir / "final_weights.npz", *out.weights)
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=json_default))


server_app = ServerApp()


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    settings = DeployedRunConfig.from_context(context.run_config)
    medsilo_log = logging.getLogger("medsilo")
    medsilo_log.setLevel(logging.INFO)
    if not medsilo_log.handlers:  # else INFO (enrolment, per-round progress) is never shown:
        # without a handler Python's last resort prints WARNING and above only
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        medsilo_log.addHandler(handler)
    # replies are seen before their objects are all pushed: retry those pulls soon
    for problem in shorten_first_retry(COORDINATOR_PULLS):
        log.warning("replies' objects are retried after Flower's 1 s: %s", problem)
    _Deployment(settings).run(PackedGrid(grid))  # messages travel packed
