"""The site's half of secure aggregation in the Flower ClientApp.

The ClientApp trains in the first phase (``keys``) exactly as its plain ``train`` handler
does (same :meth:`Algorithm.local_update`, same :class:`~medsilo.runtime.rounds.SiteSteps`),
encodes the update as the in-process engine does
(:func:`~medsilo.secure.aggregation.encode_site_input`), creates its
:class:`~medsilo.secure.site.SecAggSite` and answers with its public keys. The protocol state
(private keys, ``b_i``, the encoded input, shares received) must survive until the
``unmask`` phase, but Flower rebuilds the ClientApp for every message, possibly in another
worker process: it is kept in the node's ``context.state`` under :data:`STATE_KEY` as a
ConfigRecord (:meth:`SecAggSite.snapshot`). ``context.state`` stays on the node; nothing
secret travels in a reply. The state is deleted after ``unmask``, and a phase for another
round than the stored state's is refused.

A deployed site keeps that state in a file instead (:func:`protocol_state`,
:func:`keep_protocol_state`): Flower's ClientApp process pushes its reply before its
``context.state``, so with a large model (the encoded input is the model's size) the next
phase's message can reach the node before the state is stored, and the site would answer
it from the previous phase's state (docs/scale.md, "Large updates"). The file is written
before the reply leaves, lives in the site's kit (``state/RUN_KEY/``, readable by the site's
user only) and is deleted after ``unmask``.
"""

from __future__ import annotations

import os
from pathlib import Path

from flwr.app import ConfigRecord, RecordDict
from flwr.common.serde import config_record_from_proto, config_record_to_proto
from flwr.proto.recorddict_pb2 import ConfigRecord as ProtoConfigRecord

from medsilo.runtime.flower import secure_records as wire
from medsilo.runtime.records import update_bytes
from medsilo.secure.aggregation import SecureAggregation, encode_site_input
from medsilo.secure.protocol import SecAggError
from medsilo.secure.result import aggregation_weight
from medsilo.secure.site import SecAggSite, Snapshot
from medsilo.types import Update

STATE_KEY = "medsilo.secagg"
_LISTS = ("keys", "own", "received_from", "received")
#: The file under a deployed site's run state directory that holds the protocol state.
STATE_FILE = "secagg-state.pb"


def protocol_state(context_state: RecordDict, directory: Path | None) -> RecordDict:
    """Where the phase handlers keep the protocol state: ``context.state`` (``directory``
    is ``None``: the simulation) or a record read from ``directory`` (a deployed site)."""
    if directory is None:
        return context_state
    state = RecordDict()
    path = directory / STATE_FILE
    if path.exists():
        proto = ProtoConfigRecord.FromString(path.read_bytes())
        state.config_records[STATE_KEY] = config_record_from_proto(proto)
    return state


def keep_protocol_state(state: RecordDict, directory: Path | None) -> None:
    """Write what :func:`protocol_state` read back to ``directory`` (owner-only, replaced
    atomically), or delete the file once the protocol is over; no-op without a directory."""
    if directory is None:
        return
    path = directory / STATE_FILE
    record = state.config_records.get(STATE_KEY)
    if record is None:
        path.unlink(missing_ok=True)
        return
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{STATE_FILE}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(config_record_to_proto(record).SerializeToString())
    os.replace(tmp, path)


def _save(state: RecordDict, rnd: int, site: SecAggSite) -> None:
    # Empty lists are left out: a list's element type cannot be told from an empty one.
    snap = {k: v for k, v in site.snapshot().items() if v != []}
    state.config_records[STATE_KEY] = ConfigRecord({"round": rnd, **snap})


def _load(state: RecordDict, request: RecordDict, phase: str) -> tuple[int, SecAggSite]:
    rnd = wire.request_round(request)
    stored = state.config_records.get(STATE_KEY)
    held = None if stored is None else stored.get("round")
    if stored is None or held != rnd:
        raise SecAggError(
            f"secure aggregation {phase} for round {rnd}, but this site holds no protocol "
            f"state for that round (it holds round {held!r})"
        )
    snap: Snapshot = {k: v for k, v in stored.items() if k != "round"}  # type: ignore[misc]
    for key in _LISTS:
        snap.setdefault(key, [])
    return rnd, SecAggSite.from_snapshot(snap)


def advertise(
    secure: SecureAggregation,
    site: str,
    update: Update,
    clock_examples: int,
    request: RecordDict,
    state: RecordDict,
) -> RecordDict:
    """Phase ``keys``: encode the trained ``update``, start the protocol, send public keys."""
    rnd = wire.request_round(request)
    cohort, params = wire.read_setup(request)
    if site not in cohort:
        raise SecAggError(f"site {site!r} was asked to join a round whose cohort is {cohort}")
    encoder = secure.encoder(len(cohort))
    x, clipped = encode_site_input(
        update, aggregation_weight(secure.equal_weights, update), encoder
    )
    sa = SecAggSite(cohort.index(site) + 1, x, params)
    message = sa.advertise().encode()
    _save(state, rnd, sa)
    return wire.reply_content(
        message, clock_bytes=update_bytes(update), clock_examples=clock_examples, clipped=clipped
    )


def share_keys(request: RecordDict, state: RecordDict) -> RecordDict:
    """Phase ``shares``: seal shares of ``s_i^SK`` and ``b_i`` for every advertised site."""
    rnd, sa = _load(state, request, "shares")
    message = sa.share_keys(wire.read_key_list(request)).encode()
    _save(state, rnd, sa)
    return wire.reply_content(message)


def masked_input(request: RecordDict, state: RecordDict) -> RecordDict:
    """Phase ``masked``: the masked input, given the shares relayed to this site."""
    rnd, sa = _load(state, request, "masked")
    message = sa.masked_input(wire.read_relayed(request)).encode()
    _save(state, rnd, sa)
    return wire.reply_content(message)


def unmask(request: RecordDict, state: RecordDict) -> RecordDict:
    """Phase ``unmask``: shares that remove the survivors' and dropped sites' masks."""
    _, sa = _load(state, request, "unmask")
    message = sa.unmask(wire.read_survivors(request)).encode()
    del state.config_records[STATE_KEY]
    return wire.reply_content(message)
