"""The site half of a federation as a Flower ClientApp.

It calls the very same :meth:`Algorithm.local_update` the in-process engine calls, with a
:class:`SiteTask` built by the same :func:`~medsilo.runtime.rounds.site_round` as the
engine: same model and layout (from :class:`PreparedFederation`), same training settings,
and the same generator seed
``site_seed(cfg.seed, round, site_index)``. Per-site state (SCAFFOLD's control variate,
Ditto's personal model, FedBN's norm layers) lives in ``context.state`` as ArrayRecords (or,
for a deployed site, in per-round files: :mod:`.site_state`), so it survives between the
rounds a site is sampled in, whichever worker process serves it.
With secure aggregation, four more ``train.secagg_<phase>`` actions run the site's half of
the protocol (:mod:`.secure_site`), training in the first one through the same path.

Which site a node is comes from ``context.node_config``: ``"site"`` (a site name, for a
deployed SuperNode) or ``"partition-id"`` (its index, set by Flower's simulation runtime).
"""

from __future__ import annotations

import functools
import logging
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.constant import ErrorCode

from medsilo.algorithms.base import Algorithm
from medsilo.confidential.vulnerabilities import exploit_indicator
from medsilo.config import RunConfig
from medsilo.data.base import FederatedData
from medsilo.runtime.clinical import ClinicalMetrics, RunMetrics
from medsilo.runtime.clock import SimClock
from medsilo.runtime.cohorts import cohort_size
from medsilo.runtime.factory import build_run_algorithm, site_training
from medsilo.runtime.flower import ckks_records as ckks_wire
from medsilo.runtime.flower import ckks_site, secure_site
from medsilo.runtime.flower import records as rec
from medsilo.runtime.flower import secure_records as wire
from medsilo.runtime.flower import witness_records as witness_wire
from medsilo.runtime.flower.site_state import ContextState, SiteStateStore
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.records import evaluate_weights
from medsilo.runtime.rounds import SiteSteps, SiteTaskFields, site_round
from medsilo.secure.aggregation import SecureAggregation, secure_aggregation
from medsilo.training.local import LocalTraining
from medsilo.training.samples import Samples
from medsilo.types import Update, Weights

if TYPE_CHECKING:
    from medsilo.ledger.witness import Countersignature
    from medsilo.ledger.witness_file import SiteWitness

PARTITION_ID = "partition-id"
SITE_NAME = "site"

log = logging.getLogger(__name__)
Handler = Callable[[Message, Context], Message]


def describe_exception(err: BaseException) -> str:
    """``Type: message (at file:line in function)`` for the innermost frame."""
    text = "".join(traceback.format_exception_only(type(err), err)).strip()
    frames = traceback.extract_tb(err.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {last.filename}:{last.lineno} in {last.name})"
    return text


def reply_errors(handler: Handler) -> Handler:
    """Turn an exception into an error reply with a short, readable reason.

    Flower would otherwise report it too, but as the worker's whole Ray traceback.
    """

    @functools.wraps(handler)
    def wrapped(msg: Message, context: Context) -> Message:
        try:
            return handler(msg, context)
        except Exception as err:
            log.exception("medsilo ClientApp failed on a %s message", msg.metadata.message_type)
            reason = describe_exception(err)
            return Message(
                Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=reason), reply_to=msg
            )

    return wrapped


@dataclass
class SiteRuntime:
    """What a worker process builds once per run and reuses for every message."""

    cfg: RunConfig
    prep: PreparedFederation
    algorithm: Algorithm
    local: LocalTraining
    names: list[str]
    indicators: dict[str, int]
    steps: SiteSteps
    #: Each site's training set as it trains on it (poisoned for a data-poisoning attacker).
    train: dict[str, Samples]
    #: Secure aggregation's encoding settings (``None`` when it is off) and the simulated
    #: clock, whose processed-example count a secure site reports instead of its update.
    secure: SecureAggregation | None
    clock: SimClock
    #: The metrics this site reports states of (``None``: the task or config has none).
    clinical: RunMetrics | None = None
    #: Where the site's algorithm state lives between rounds: ``context.state`` (the
    #: simulation) or per-round files on the site's disk (a deployed site).
    state_store: SiteStateStore = field(default_factory=ContextState)
    #: A deployed site's folder for secure aggregation's protocol state between phases
    #: (:func:`~medsilo.runtime.flower.secure_site.protocol_state`); ``None``: in
    #: ``context.state`` (the simulation, whose contexts are stored before the reply).
    secure_state_dir: Path | None = None
    #: This site's witness of the coordinator's audit ledger (a deployed site: its kit's
    #: attestation key and witness file); ``None`` where the coordinator sends no ledger head.
    witness: SiteWitness | None = None

    def witness_head(self, msg: Message) -> Countersignature | None:
        """Check and countersign the ledger head ``msg`` carries, if any (before any work
        on the message: a head that does not extend the last one raises)."""
        proof = witness_wire.read_head(msg.content)
        if proof is None:
            return None
        if self.witness is None:
            raise ValueError("the coordinator sent a ledger head, but this site keeps no witness")
        return self.witness.witness(proof)

    def site_of(self, context: Context) -> tuple[str, int]:
        node_config = context.node_config
        if SITE_NAME in node_config:
            name = str(node_config[SITE_NAME])
            if name not in self.names:
                raise ValueError(f"node_config site {name!r} is not one of {self.names}")
            return name, self.names.index(name)
        if PARTITION_ID not in node_config:
            raise ValueError(
                f"cannot tell which site this node is: node_config has neither "
                f"{SITE_NAME!r} nor {PARTITION_ID!r} (got {dict(node_config)})"
            )
        index = int(node_config[PARTITION_ID])
        if not 0 <= index < len(self.names):
            raise ValueError(
                f"partition-id {index} out of range for {len(self.names)} sites {self.names}"
            )
        return self.names[index], index


# Flower's Ray backend pickles the ClientApp (with everything it closes over) for every
# message, so building the prepared federation on each call would redo the tensor
# conversion every round. Worker processes keep it here, keyed by a per-app token.
_RUNTIMES: OrderedDict[str, SiteRuntime] = OrderedDict()
_MAX_CACHED = 2


def build_site_runtime(
    cfg: RunConfig,
    prep: PreparedFederation,
    names: list[str],
    algorithm: Algorithm | None = None,
    indicators: dict[str, int] | None = None,
) -> SiteRuntime:
    """A site runtime over ``prep``'s sites (all of them in simulation, one when deployed).

    ``names`` is the federation's roster (site order fixes seeds and indices); ``indicators``
    overrides the CC-PGD exploit indicator the config's platform records give (a deployed
    coordinator sends the one attestation established).
    """
    cfg.sites.check_names(names)
    steps = SiteSteps(cfg, names, prep.fed.num_classes)
    own = indicators or {}
    return SiteRuntime(
        cfg=cfg,
        prep=prep,
        algorithm=algorithm if algorithm is not None else build_run_algorithm(cfg, len(names)),
        local=site_training(cfg),
        names=names,
        indicators={n: own.get(n, exploit_indicator(cfg.sites.record(n).platform)) for n in names},
        steps=steps,
        train={n: steps.training_data(n, prep.train[n]) for n in prep.fed.site_names},
        secure=secure_aggregation(
            cfg, cohort_size(len(names), cfg.training.fraction, cfg.training.min_sites)
        ),
        clock=SimClock(
            cfg.seed, names, {n: cfg.sites.record(n) for n in names}, cfg.training.batch_size
        ),
        clinical=ClinicalMetrics.of(cfg, prep.fed.task),
    )


def _runtime(
    token: str, cfg: RunConfig, fed: FederatedData | None, algorithm: Algorithm | None
) -> SiteRuntime:
    cached = _RUNTIMES.get(token)
    if cached is not None:
        _RUNTIMES.move_to_end(token)
        return cached
    prep = PreparedFederation.build(cfg, fed)
    runtime = build_site_runtime(cfg, prep, prep.fed.site_names, algorithm)
    _RUNTIMES[token] = runtime
    while len(_RUNTIMES) > _MAX_CACHED:
        _RUNTIMES.popitem(last=False)
    return runtime


def _local_update(
    rt: SiteRuntime, msg: Message, context: Context, state: dict[str, Weights]
) -> Update:
    """The site's update for a ``train`` broadcast, exactly as ``InProcessSites.site_update``
    makes it; the site's algorithm state is kept in ``rt.state_store``."""
    site, index = rt.site_of(context)
    rnd, weights, payload, _ = rec.read_broadcast(msg.content)
    fields = SiteTaskFields(
        site=site,
        index=index,
        round=rnd,
        seed=rt.cfg.seed,
        model=rt.prep.model,
        layout=rt.prep.layout,
        data=rt.train[site],
        training=rt.local,
        state=state,
        exploit_indicator=rt.indicators[site],
    )
    update = site_round(rt.algorithm, rt.steps, fields, weights, payload)
    rt.state_store.store(context, rnd, fields.state)
    return update


def make_client_app(
    cfg: RunConfig,
    fed: FederatedData | None = None,
    *,
    algorithm: Algorithm | None = None,
) -> ClientApp:
    """A ClientApp that runs ``cfg``'s algorithm for whichever site a node is.

    ``fed`` defaults to ``build_federation(cfg.data, cfg.seed)``, built inside each worker
    (so only the config travels). ``algorithm`` overrides the one ``cfg`` names (it must be
    picklable; the ServerApp must use an equivalent one).
    """
    token = uuid.uuid4().hex
    app = ClientApp()

    def runtime(context: Context) -> SiteRuntime:
        return _runtime(token, cfg, fed, algorithm)

    @app.query()
    @reply_errors
    def identify(msg: Message, context: Context) -> Message:
        site, index = runtime(context).site_of(context)
        return Message(rec.identity_content(site, index), reply_to=msg)

    add_site_handlers(app, runtime)
    return app


def add_site_handlers(app: ClientApp, runtime: Callable[[Context], SiteRuntime]) -> None:
    """Register the training, secure-aggregation and evaluation actions on ``app``.

    ``runtime(context)`` gives the site runtime for a message: built from the shipped
    federation in simulation, from the site's own data and enrolment in a deployment.
    """

    @app.train()
    @reply_errors
    def train(msg: Message, context: Context) -> Message:
        rt = runtime(context)
        signed = rt.witness_head(msg)  # refuses a ledger that does not extend the last head
        # Train-with-evaluation: the received model (the previous round's result) is
        # evaluated in the state that round left, before training changes it.
        state = rt.state_store.load(context)  # read once (a deployed site: from its disk)
        scores = _evaluation(rt, msg, context, state) if rec.evaluates_first(msg.content) else None
        content = rec.update_to_content(_local_update(rt, msg, context, state))
        if scores is not None:
            rec.add_records(content, scores)
        return Message(witness_wire.add_countersignature(content, signed), reply_to=msg)

    # Secure aggregation (medsilo.runtime.flower.secure_site): one action per protocol phase.
    @app.train(wire.ACTIONS["keys"])
    @reply_errors
    def secagg_keys(msg: Message, context: Context) -> Message:
        rt = runtime(context)
        if rt.secure is None:
            raise ValueError("secure aggregation is not enabled in this site's config")
        site, _ = rt.site_of(context)
        update = _local_update(rt, msg, context, rt.state_store.load(context))
        examples = rt.clock.examples(update)
        state = secure_site.protocol_state(context.state, rt.secure_state_dir)
        reply = secure_site.advertise(rt.secure, site, update, examples, msg.content, state)
        secure_site.keep_protocol_state(state, rt.secure_state_dir)
        return Message(reply, reply_to=msg)

    def secagg_phase(
        phase: Callable[[RecordDict, RecordDict], RecordDict], msg: Message, context: Context
    ) -> Message:
        directory = runtime(context).secure_state_dir
        state = secure_site.protocol_state(context.state, directory)
        reply = phase(msg.content, state)
        secure_site.keep_protocol_state(state, directory)  # before the reply leaves
        return Message(reply, reply_to=msg)

    @app.train(wire.ACTIONS["shares"])
    @reply_errors
    def secagg_shares(msg: Message, context: Context) -> Message:
        return secagg_phase(secure_site.share_keys, msg, context)

    @app.train(wire.ACTIONS["masked"])
    @reply_errors
    def secagg_masked(msg: Message, context: Context) -> Message:
        return secagg_phase(secure_site.masked_input, msg, context)

    @app.train(wire.ACTIONS["unmask"])
    @reply_errors
    def secagg_unmask(msg: Message, context: Context) -> Message:
        return secagg_phase(secure_site.unmask, msg, context)

    # CKKS (medsilo.runtime.flower.ckks_site): encrypt after training; the key holder's keys.
    @app.train(ckks_wire.TRAIN)
    @reply_errors
    def ckks_train(msg: Message, context: Context) -> Message:
        rt, secure = _secure(runtime(context))
        ctx, slots = ckks_site.relayed_context(msg.content)
        update = _local_update(rt, msg, context, rt.state_store.load(context))
        reply = ckks_site.encrypt(secure, ctx, slots, update, rt.clock.examples(update))
        return Message(reply, reply_to=msg)

    @app.query(ckks_wire.KEYS)
    @reply_errors
    def ckks_keys(msg: Message, context: Context) -> Message:
        rt, secure = _secure(runtime(context))
        site, _ = rt.site_of(context)
        return Message(ckks_site.publish_keys(secure, site, context.state), reply_to=msg)

    @app.query(ckks_wire.DECRYPT)
    @reply_errors
    def ckks_decrypt(msg: Message, context: Context) -> Message:
        rt, secure = _secure(runtime(context))
        site, _ = rt.site_of(context)
        reply = ckks_site.decrypt(secure, site, msg.content, context.state)
        return Message(reply, reply_to=msg)

    @app.evaluate()
    @reply_errors
    def evaluate(msg: Message, context: Context) -> Message:
        rt = runtime(context)
        return Message(_evaluation(rt, msg, context, rt.state_store.load(context)), reply_to=msg)


def _secure(rt: SiteRuntime) -> tuple[SiteRuntime, SecureAggregation]:
    """``(rt, its secure aggregation)``; refused where the site's config has none."""
    if rt.secure is None:
        raise ValueError("secure aggregation is not enabled in this site's config")
    return rt, rt.secure


def _evaluation(
    rt: SiteRuntime, msg: Message, context: Context, state: dict[str, Weights]
) -> RecordDict:
    """The site's evaluation of the broadcast weights: its own deployable model (and, when
    asked, the global model) on its own test set, clinical metric states, its state."""
    site, index = rt.site_of(context)
    _, weights, _, return_state = rec.read_broadcast(msg.content)
    own = rt.algorithm.site_weights(weights, state, rt.prep.layout)
    test = rt.prep.test[site]
    result = evaluate_weights(rt.prep.model, own, test)
    global_metrics = None
    if rec.wants_global_eval(msg.content):  # the coordinator has no test data to pool
        global_metrics = evaluate_weights(rt.prep.model, weights, test).as_dict()
    content = rec.eval_content(site, index, result.as_dict(), global_metrics)
    if rt.clinical is not None:  # the global model's metric states on this site's data
        report = rt.clinical.report_for(rt.prep, site, weights, rec.is_final(msg.content))
        rec.add_clinical(content, report.to_wire())
    if return_state:
        rec.named_weights_to_records(content, rec.STATE_PREFIX, state)
    return content
