"""The sites' half of CKKS secure aggregation over Flower, and the key holder's.

Every cohort site trains exactly as its plain ``train`` handler does and encrypts its
``[clip(w * delta), w, w * loss]`` under the public context the coordinator relays
(:func:`~medsilo.secure.ckks_round.encrypt_site_input`, what the engine's sites do).

One site, ``secure_aggregation.key_holder``, also holds the keys: on the coordinator's first
``query.ckks_keys`` it generates them (:meth:`CKKSKeys.generate`, fresh per run) and keeps the
secret context in the node's ``context.state`` under :data:`STATE_KEY` (it never leaves the
node; only the public context is sent); on ``query.ckks_decrypt`` it decrypts the vector it is
given. It decrypts once per round, for a round later than the last it decrypted, a vector of
the round's size: so the coordinator gets one decryption a round. It cannot tell a sum from a
single site's ciphertext: that a curious coordinator does not send it one to decrypt is the
trust assumption of the key holder (docs/secure-aggregation.md, "CKKS over Flower").
"""

from __future__ import annotations

import tenseal as ts  # type: ignore[import-untyped]
from flwr.app import ConfigRecord, RecordDict

from medsilo.runtime.flower import ckks_records as wire
from medsilo.runtime.records import update_bytes
from medsilo.secure.aggregation import SecureAggregation
from medsilo.secure.ckks import CKKSKeys, chunks_for, decrypt_sum, load_context
from medsilo.secure.ckks_round import encrypt_site_input
from medsilo.types import Update

STATE_KEY = "medsilo.ckks"


def _key_holder(secure: SecureAggregation, site: str) -> None:
    holder = secure.cfg.key_holder
    if site != holder:
        raise PermissionError(
            f"site {site!r} is not the CKKS key holder (secure_aggregation.key_holder: {holder!r})"
        )


def publish_keys(secure: SecureAggregation, site: str, state: RecordDict) -> RecordDict:
    """``query.ckks_keys``: generate the run's keys once, keep the secret, send the public."""
    _key_holder(secure, site)
    stored = state.config_records.get(STATE_KEY)
    if stored is None:
        keys = CKKSKeys.generate()
        stored = ConfigRecord(
            {"secret": keys.secret, "public": keys.public, "slots": keys.slots, "decrypted": 0}
        )
        state.config_records[STATE_KEY] = stored
    public, slots = stored["public"], stored["slots"]
    assert isinstance(public, bytes) and isinstance(slots, int)
    return wire.keys_reply(public, slots)


def decrypt(
    secure: SecureAggregation, site: str, request: RecordDict, state: RecordDict
) -> RecordDict:
    """``query.ckks_decrypt``: the round's summed vector in clear, once per round."""
    _key_holder(secure, site)
    stored = state.config_records.get(STATE_KEY)
    if stored is None:
        raise PermissionError("this key holder has published no keys for this run")
    rnd, length = wire.read_int(request, "round"), wire.read_int(request, "length")
    chunks = wire.read_chunks(request)
    last = stored["decrypted"]
    assert isinstance(last, int)
    if rnd <= last:
        raise PermissionError(
            f"round {rnd}: the key holder already decrypted round {last}'s sum; it decrypts "
            "one vector per round, for a later round"
        )
    slots = stored["slots"]
    assert isinstance(slots, int)
    if len(chunks) != chunks_for(length, slots):
        raise ValueError(f"{len(chunks)} ciphertexts for {length} values of {slots} slots each")
    secret = stored["secret"]
    assert isinstance(secret, bytes)
    values = decrypt_sum(load_context(secret), chunks, length)
    stored["decrypted"] = rnd
    return wire.sum_reply(values)


def relayed_context(request: RecordDict) -> tuple[ts.Context, int]:
    """``(public context, slots)`` relayed with ``train.ckks``; one holding a secret key is
    refused before any work (a site never encrypts under keys whose secret it was shown)."""
    public = load_context(wire.read_bytes(request, "public"))
    if public.is_private():
        raise PermissionError("the relayed CKKS context holds a secret key; refusing to use it")
    return public, wire.read_int(request, "slots")


def encrypt(
    secure: SecureAggregation, ctx: ts.Context, slots: int, update: Update, clock_examples: int
) -> RecordDict:
    """``train.ckks``'s reply: the trained ``update`` encrypted under the public context."""
    chunks, clipped = encrypt_site_input(ctx, slots, update, secure.equal_weights, secure.cfg.clip)
    return wire.encrypted_reply(
        chunks,
        clock_bytes=update_bytes(update),
        clock_examples=clock_examples,
        clipped=clipped,
    )
