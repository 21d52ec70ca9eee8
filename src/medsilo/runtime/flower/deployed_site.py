"""The site half of a deployed federation: the ClientApp a hospital's SuperNode runs.

``flwr run`` ships the app bundle; each hospital's ``flower-supernode`` (started by
``medsilo site start KIT --data PATH``) runs :data:`client_app` on that hospital's own data
only. Its ``node_config`` says who it is and where its files are:

* ``site``: the site name (from the kit), ``kit``: the site kit folder (``attest.key``, and
  ``state/`` where the site keeps its algorithm state per round), ``data``: its data path.

Set-up (:mod:`.enrolment_records`): the coordinator's ``query.enrol`` carries the run config,
the roster and an attestation nonce; the site loads its data
(:func:`medsilo.data.own_site.load_own_site`), signs attestation evidence with its kit key
and answers with the evidence, the shape of its data and, for federated standardisation, the
aggregate moments of its training rows. ``query.admission`` says whether the
coordinator admitted it (a refusal is logged here too) and carries the federation-wide mean
and std. Everything the site needs later is kept in ``context.state`` (and its prepared
arrays in ``KIT/state/<run_key>/own-data.npz``), because Flower runs every message in a
process of its own (forked from a warm one, :mod:`medsilo.deploy.warm_superexec`, or a fresh
``flwr-clientapp``).

Training and evaluation are :func:`medsilo.runtime.flower.client_app.add_site_handlers`,
the very handlers of the simulation ClientApp, over a runtime built from this site's data.

Witnessing (docs/audit-ledger.md): the coordinator's ``train`` messages carry the audit
ledger's new records and ``query.witness`` carries them after ``run_end``; the site checks
they extend the head it saw last, countersigns the new head with its kit's ``attest.key``
and keeps the heads in ``KIT/witness/<run_key>.jsonl`` (:mod:`medsilo.ledger.witness_file`).
A head that does not extend its own is refused: the message fails and the file keeps why.

Resume: after each training step the site's algorithm state (SCAFFOLD's control variate,
Ditto's personal model, error-feedback residuals) is written to
``KIT/state/<run_key>/round-XXXX.npz`` before the reply leaves, and read back from there
(:class:`~medsilo.runtime.flower.site_state.RoundFiles`; ``context.state`` holds no copy).
When a restarted coordinator resumes after round R, the site deletes the files of later
rounds, so it continues exactly where the coordinator's checkpoint did.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from medsilo.attestation.measurement import package_measurement
from medsilo.attestation.software import sign_evidence
from medsilo.config import RunConfig
from medsilo.data._util import frozen
from medsilo.data.base import FederatedData, SiteData, in_memory
from medsilo.data.own_site import load_own_site
from medsilo.data.standardize import Moments, apply_standardization
from medsilo.governance.checkpoint import deployed_checkpoints
from medsilo.governance.site_check import check_run_approved
from medsilo.ledger.witness_file import SiteWitness
from medsilo.runtime.flower import enrolment_records as wire
from medsilo.runtime.flower import records as rec
from medsilo.runtime.flower import witness_records as witness_wire
from medsilo.runtime.flower.client_app import (
    SiteRuntime,
    add_site_handlers,
    build_site_runtime,
    reply_errors,
)
from medsilo.runtime.flower.packed_content import packed_mod
from medsilo.runtime.flower.site_state import RoundFiles, restore_round_state
from medsilo.runtime.prepared import PreparedFederation

log = logging.getLogger(__name__)

SITE = "site"
KIT = "kit"
DATA = "data"
#: Optional node-config claims for the software attestation backend.
PLATFORM = "platform"
TCB_VERSION = "tcb-version"

_DEPLOYMENT = "medsilo.deployment"  # ConfigRecord in context.state
_STANDARDIZE = "medsilo.standardize"  # ArrayRecord in context.state: mean, std
STATE_DIR = "state"
WITNESS_DIR = "witness"


class SiteSetupError(RuntimeError):
    """This site cannot take part as configured (missing kit file, data, ...)."""


def _node_str(context: Context, key: str) -> str:
    value = context.node_config.get(key)
    if not isinstance(value, str) or not value:
        raise SiteSetupError(
            f"node_config has no {key!r}; start the site with `medsilo site start KIT --data "
            f"PATH` (got node_config keys {sorted(context.node_config)})"
        )
    return value


def _attestation_key(kit: Path) -> Ed25519PrivateKey:
    path = kit / "attest.key"
    if not path.is_file():
        raise SiteSetupError(f"{path} is missing: re-run `medsilo provision` for this site")
    key = load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SiteSetupError(f"{path} is not an Ed25519 private key")
    return key


def _own_data(cfg: RunConfig, context: Context) -> FederatedData:
    site = _node_str(context, SITE)
    data = context.node_config.get(DATA)
    path = Path(str(data)).expanduser().resolve() if data else None
    return load_own_site(cfg.data, site, path, cfg.seed)


OWN_DATA = "own-data.npz"


def cache_own_data(directory: Path, fed: FederatedData) -> None:
    """Keep the site's prepared (unstandardised) arrays beside its state for this run.

    Every message runs in a fresh process; reading them back is much cheaper than parsing
    and splitting the source files (and importing what that needs) each time. The cache
    is rewritten at every enrolment, so a run always starts from the data as it is then.
    Data streamed from disk (an image folder) is not cached: a site never holds it whole,
    so every message reads the folder's labels CSV again (an earlier cache is removed).
    """
    directory.mkdir(parents=True, exist_ok=True)
    if fed.streamed:
        (directory / OWN_DATA).unlink(missing_ok=True)
        return
    own = fed.sites[0]
    train = in_memory(own.train, "the site's data cache")
    test = in_memory(own.test, "the site's data cache")
    tmp = directory / f".{OWN_DATA}.{os.getpid()}.npz"
    groups: dict[str, Any] = {
        f"{split}_group/{name}": column
        for split, data in (("train", train), ("test", test))
        for name, column in data.groups.items()
    }  # subgroup columns (e.g. sex) for per-subgroup metrics
    np.savez(
        tmp,
        train_x=train.x,
        train_y=train.y,
        test_x=test.x,
        test_y=test.y,
        meta=np.array([fed.name, own.name, str(fed.num_classes), fed.task]),
        **groups,
    )
    os.replace(tmp, directory / OWN_DATA)


def load_cached_own_data(directory: Path) -> FederatedData | None:
    path = directory / OWN_DATA
    if not path.is_file():
        return None
    with np.load(path) as npz:
        name, site, classes, task = (str(v) for v in npz["meta"])
        groups: dict[str, dict[str, np.ndarray]] = {"train": {}, "test": {}}
        for key in npz.files:
            split, _, column = key.partition("_group/")
            if column:
                groups[split][column] = npz[key]
        train = frozen(npz["train_x"], npz["train_y"], groups["train"])
        test = frozen(npz["test_x"], npz["test_y"], groups["test"])
    return FederatedData(name, [SiteData(site, train, test)], test, int(classes), task)  # type: ignore[arg-type]


# --- site state on disk (per round, for a coordinator's resume) ----------------------------


def _state_dir(context: Context, run_key: str) -> Path:
    return Path(_node_str(context, KIT)) / STATE_DIR / run_key


# --- runtime per message ------------------------------------------------------------------


def _deployment(context: Context) -> ConfigRecord:
    if _DEPLOYMENT not in context.state.config_records:
        raise SiteSetupError("this site has not been enrolled in the run (no query.enrol seen)")
    return context.state.config_records[_DEPLOYMENT]


def _site_data(context: Context, deployment: ConfigRecord) -> FederatedData:
    """This site's unstandardised data: the arrays cached at enrolment, else its files."""
    stored = load_cached_own_data(_state_dir(context, str(deployment["run_key"])))
    if stored is not None:
        return stored
    return _own_data(RunConfig.model_validate_json(str(deployment["config"])), context)


def _runtime(context: Context) -> SiteRuntime:
    """The site runtime for this message, rebuilt from ``context.state`` (Flower runs every
    message in a process of its own, so there is nothing to keep between messages)."""
    deployment = _deployment(context)
    if not bool(deployment.get("accepted", False)):
        reason = deployment.get("reason")
        raise SiteSetupError(f"the coordinator refused this site: {reason!s}")
    cfg = RunConfig.model_validate_json(str(deployment["config"]))
    # The run's intra-op threads, as the engine sets them (default 1): torch's default, one
    # per core, made each of three sites sharing two cores spend 10 ms per tiny op waiting
    # for its threads to be scheduled (a heart-disease step; ResNet-18 rounds ran 3.9x the
    # engine's). Each message's process starts without a pool, so this sizes the first one.
    torch.set_num_threads(cfg.threads)
    # The coordinator sends the global weights: the site builds the architecture only and
    # never reads the coordinator's model.weights path.
    cfg = cfg.model_copy(update={"model": cfg.model.without_weights()})
    roster = [str(n) for n in deployment["roster"]]  # type: ignore[union-attr]
    fed = _site_data(context, deployment)
    if _STANDARDIZE in context.state.array_records:
        stats = context.state.array_records[_STANDARDIZE]
        fed = apply_standardization(fed, stats["0"].numpy(), stats["1"].numpy())
    site = _node_str(context, SITE)
    runtime = build_site_runtime(
        cfg,
        PreparedFederation.build(cfg, fed),
        roster,
        indicators={site: int(deployment["exploit_indicator"])},  # type: ignore[arg-type]
    )
    directory = _state_dir(context, str(deployment["run_key"]))
    runtime.state_store = RoundFiles(directory, deployed_checkpoints(cfg), cfg.training.rounds)
    runtime.secure_state_dir = directory
    runtime.witness = _witness(context, deployment)
    return runtime


def _witness(context: Context, deployment: ConfigRecord) -> SiteWitness:
    """This site's witness of the run's ledger, signed with its attestation key."""
    kit = Path(_node_str(context, KIT))
    path = kit / WITNESS_DIR / f"{deployment['run_key']!s}.jsonl"
    run = str(deployment["run_key"])  # named in every countersignature
    return SiteWitness(path, _node_str(context, SITE), _attestation_key(kit), run)


# --- the app --------------------------------------------------------------------------------

client_app = ClientApp(mods=[packed_mod])  # messages travel packed (:mod:`.packed_content`)


@client_app.query(wire.ENROL)
@reply_errors
def enrol(msg: Message, context: Context) -> Message:
    request = wire.read_enrol(msg.content)
    site = _node_str(context, SITE)
    if site not in request.roster:
        raise SiteSetupError(f"site {site!r} is not in the federation's roster {request.roster}")
    cfg = RunConfig.model_validate_json(request.config_json)
    kit = Path(_node_str(context, KIT))
    # the site's own council copy decides, and each decision starts one run only
    check_run_approved(kit, cfg, request.decision_json, request.run_key)
    fed = _own_data(cfg, context)
    evidence = sign_evidence(
        _attestation_key(kit),
        site=site,
        measurement=package_measurement(),
        nonce=request.nonce,
        platform=str(context.node_config.get(PLATFORM, "software")),  # type: ignore[arg-type]
        tcb_version=str(context.node_config.get(TCB_VERSION, "")),
    )
    directory = _state_dir(context, request.run_key)
    cache_own_data(directory, fed)
    # later rounds' files go; the newest kept one is the state the site continues from
    restored_round, _ = restore_round_state(directory, request.resume_round)
    if request.resume_round:
        log.info(
            "resuming after round %d with site state of round %d",
            *(request.resume_round, restored_round),
        )
    context.state[_DEPLOYMENT] = ConfigRecord(
        {
            "config": request.config_json,
            "roster": request.roster,
            "run_key": request.run_key,
            "accepted": False,
            "reason": "awaiting admission",
            "exploit_indicator": 0,
        }
    )
    own = fed.sites[0]
    reply = wire.Enrolled(
        site=site,
        index=request.roster.index(site),
        evidence_json=evidence.model_dump_json(),
        n_train=len(own.train),
        n_test=len(own.test),
        input_shape=tuple(fed.input_shape),
        num_classes=fed.num_classes,
        task=fed.task,
    )
    content = wire.enrolled_content(reply)
    if cfg.data.standardize == "federated":  # aggregates only, with the enrolment reply
        m = Moments.of(in_memory(own.train, "standardisation").x)
        rec.add_records(content, wire.moments_content(m.count, m.total, m.total_sq))
    return Message(content, reply_to=msg)


@client_app.query(wire.ADMISSION)
@reply_errors
def admission(msg: Message, context: Context) -> Message:
    decision, standardize = wire.read_admission(msg.content)
    deployment = _deployment(context)
    deployment["accepted"] = decision.accepted
    deployment["reason"] = decision.reason
    deployment["exploit_indicator"] = decision.exploit_indicator
    if standardize is not None:
        context.state[_STANDARDIZE] = ArrayRecord([standardize[0], standardize[1]])
    if decision.accepted:
        log.info("admitted by the coordinator: %s", decision.reason)
    else:
        log.error("REFUSED by the coordinator: %s", decision.reason)
    return Message(RecordDict(), reply_to=msg)


@client_app.query(witness_wire.WITNESS)
@reply_errors
def witness(msg: Message, context: Context) -> Message:
    proof = witness_wire.read_head(msg.content)
    if proof is None:
        raise SiteSetupError("the coordinator's query.witness carries no ledger head")
    signature = _witness(context, _deployment(context)).witness(proof)
    return Message(witness_wire.add_countersignature(RecordDict(), signature), reply_to=msg)


add_site_handlers(client_app, _runtime)
