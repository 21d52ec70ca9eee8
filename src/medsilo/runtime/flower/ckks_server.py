"""The coordinator's half of CKKS secure aggregation over Flower (docs/secure-aggregation.md).

The three roles of the engine's :class:`~medsilo.secure.ckks_round.CKKSAggregation` become
three parties: the key holder is a site (``secure_aggregation.key_holder``) that generates
the keys and keeps the secret one on its node (:mod:`.ckks_site`), the sites encrypt, and the
coordinator, which only ever receives the *public* context, adds the ciphertexts with the
engine's :func:`~medsilo.secure.ckks.sum_ciphertexts` (which refuses a context holding a
secret key) and asks the key holder to decrypt that sum. A round is therefore two exchanges:
``train.ckks`` to the cohort, ``query.ckks_decrypt`` to the key holder (plus, once per run,
``query.ckks_keys``). The result is the same :class:`~medsilo.secure.result.SecureRound` the
engine fills, so :class:`~medsilo.runtime.rounds.CoordinatorSteps`, the record and the skip
decisions are the engine's; sites that fail, miss the simulated ``round_timeout_s`` or drop
out by ``simulated_dropout`` are missing from the sum exactly as in the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flwr.app import RecordDict

from medsilo.config import RunConfig
from medsilo.runtime.flower import ckks_records as wire
from medsilo.runtime.flower.errors import FlowerRunError
from medsilo.runtime.flower.records import RecordFormatError
from medsilo.runtime.flower.secure_server import SecureTrainRound, Send, Timing
from medsilo.secure.aggregation import SecureAggregation, no_input_reason
from medsilo.secure.ckks import load_context, sum_ciphertexts
from medsilo.secure.result import SecureRound, placeholder

log = logging.getLogger(__name__)


def ckks_problem(cfg: RunConfig, names: list[str]) -> str | None:
    """Why the Flower runtime cannot run ``cfg``'s CKKS over sites ``names``, or ``None``."""
    secure = cfg.secure_aggregation
    if not secure.enabled or secure.mechanism != "ckks":
        return None
    if secure.key_holder is None:
        return (
            "secure_aggregation.mechanism 'ckks' over Flower needs secure_aggregation.key_holder: "
            "the site that keeps the secret key and decrypts each round's sum (the coordinator "
            f"must not hold it); one of {names}"
        )
    if secure.key_holder not in names:
        return f"secure_aggregation.key_holder {secure.key_holder!r} is not a site: {names}"
    return None


class CKKSCoordinator:
    """What the coordinator holds for CKKS: the key holder's name and the public context."""

    def __init__(self, secure: SecureAggregation) -> None:
        assert secure.cfg.key_holder is not None
        self.secure = secure
        self.key_holder = secure.cfg.key_holder
        self.public: bytes | None = None
        self.slots = 0

    def fetch_keys(self, send: Send, rnd: int) -> None:
        """Ask the key holder for the run's public context (once); refuse a secret one."""
        if self.public is not None:
            return
        replies = send(wire.MESSAGE_TYPES[wire.KEYS], {self.key_holder: wire.keys_request(rnd)})
        if self.key_holder not in replies:
            raise FlowerRunError(f"the CKKS key holder {self.key_holder!r} sent no public keys")
        content = replies[self.key_holder]
        public = wire.read_bytes(content, "public")
        if load_context(public).is_private():
            raise FlowerRunError(
                f"the CKKS key holder {self.key_holder!r} sent a context holding its secret key"
            )
        self.public, self.slots = public, wire.read_int(content, "slots")

    def train_round(
        self,
        send: Send,
        rnd: int,
        cohort: list[str],
        broadcast: RecordDict,
        length: int,
        timing: Timing,
    ) -> SecureTrainRound:
        """One round: the cohort trains and encrypts, the coordinator sums, the key holder
        decrypts the sum. ``length``: delta coordinates plus the extra slots."""
        self.fetch_keys(send, rnd)
        assert self.public is not None
        wire.add_public(broadcast, self.public, self.slots)
        replies = _readable(
            rnd, send(wire.MESSAGE_TYPES[wire.TRAIN], dict.fromkeys(cohort, broadcast))
        )
        trained = [s for s in cohort if s in replies]
        clocks = {s: wire.read_clock(replies[s]) for s in trained}
        round_timing = timing([s for s in cohort if s not in replies], clocks)
        result = SecureRound([], list(cohort), None, None, mechanism="ckks")
        result.clipped = sum(c["clipped"] for c in clocks.values())
        absent = set(self.secure.dropouts(rnd, list(range(len(trained)))))
        sent: dict[str, list[bytes]] = {}
        for index, site in enumerate(trained):  # as the engine's CKKSAggregation.run
            if index in absent:  # simulated dropout: sends nothing, missing from the sum
                result.recovered.append(site)
                continue
            chunks = wire.read_chunks(replies[site])
            result.bytes_up[site] = sum(len(c) for c in chunks)
            if site not in round_timing.on_time:  # sent, too late for this round's sum
                result.recovered.append(site)
                continue
            sent[site] = chunks
        result.updates = [placeholder(s, b"".join(c)) for s, c in sent.items()]
        if not sent:
            result.abort_reason = no_input_reason(len(cohort))
            return SecureTrainRound(result, round_timing, trained)
        summed = sum_ciphertexts(load_context(self.public), list(sent.values()))
        request = wire.decrypt_request(rnd, length, summed)
        answer = send(wire.MESSAGE_TYPES[wire.DECRYPT], {self.key_holder: request})
        try:
            if self.key_holder not in answer:
                raise RecordFormatError("no reply")
            result.decrypted = wire.read_sum(answer[self.key_holder], length)
        except RecordFormatError as err:
            result.abort_reason = f"the CKKS key holder {self.key_holder!r} did not decrypt: {err}"
            log.warning("round %d: %s", rnd, result.abort_reason)
            return SecureTrainRound(result, round_timing, trained)
        result.survivors = list(sent)
        return SecureTrainRound(result, round_timing, trained)


def _readable(rnd: int, replies: Mapping[str, RecordDict]) -> dict[str, RecordDict]:
    """The replies that carry ciphertexts and clock fields; another site is dropped."""
    out = {}
    for site, content in replies.items():
        try:
            wire.read_chunks(content)
            wire.read_clock(content)
        except RecordFormatError as err:
            log.warning("round %d (ckks): site %r dropped: %s", rnd, site, err)
            continue
        out[site] = content
    return out
