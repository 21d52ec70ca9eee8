"""The coordinator's half of secure aggregation in the Flower ServerApp.

With ``secure_aggregation`` on (mechanism ``masking``), the round's single ``train`` exchange
becomes the protocol's four exchanges (:mod:`.secure_records`): ``keys`` (sites train, then
advertise keys), ``shares`` (the coordinator relays sealed shares), ``masked`` (masked
inputs) and ``unmask``. This module is only a transport, like
:func:`medsilo.secure.exchange.secure_sum` is for the in-process engine: it hands the bytes
each site sent to the same :class:`~medsilo.secure.coordinator.SecAggCoordinator` and fills
the same :class:`~medsilo.secure.result.SecureRound` through the same
:class:`~medsilo.secure.aggregation.SecureAggregation` pieces (``params``, ``start``,
``planned_drops``, ``finish``), so the round's sums, record and skip decisions are the
engine's.

Dropouts are real here: a site that fails or does not reply in a phase is dropped from that
phase on; the coordinator recovers it while at least ``t`` sites remain, else the round
aborts and is skipped with the model unchanged. ``simulated_dropout`` and sites that miss the
simulated ``round_timeout_s`` are silenced exactly as in the engine (not asked for their
masked input), so both runtimes drop the same sites for the same seed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flwr.app import RecordDict

from medsilo.runtime.clock import RoundTiming
from medsilo.runtime.flower import secure_records as wire
from medsilo.runtime.flower.records import RecordFormatError
from medsilo.secure.aggregation import SecureAggregation, finish, no_input_reason
from medsilo.secure.coordinator import SecAggCoordinator
from medsilo.secure.exchange import PHASES, SecureSum
from medsilo.secure.prg import MaskPRG
from medsilo.secure.protocol import SecAggAbort
from medsilo.secure.result import SecureRound

log = logging.getLogger(__name__)

#: ``(message type, content per site) -> reply content per site that answered``; a site
#: that failed or stayed silent is simply missing from the result.
Send = Callable[[str, Mapping[str, RecordDict]], dict[str, RecordDict]]
#: ``(sites that never answered, clock fields per site that trained) -> the round's timing``.
Timing = Callable[[list[str], dict[str, dict[str, int]]], RoundTiming]


@dataclass
class SecureTrainRound:
    """What the secure exchanges of one round produced."""

    secure: SecureRound
    timing: RoundTiming
    #: Sites that trained (answered the ``keys`` phase), in cohort order.
    trained: list[str]


def _readable(rnd: int, phase: str, replies: Mapping[str, RecordDict]) -> dict[str, RecordDict]:
    """The replies that carry the phase's fields; a site whose reply does not is dropped."""
    out = {}
    for site, content in replies.items():
        try:
            wire.read_reply(content)
            if phase == "keys":
                wire.read_clock(content)
        except RecordFormatError as err:
            log.warning("round %d (%s): site %r dropped: %s", rnd, phase, site, err)
            continue
        out[site] = content
    return out


def secure_train_round(
    secure: SecureAggregation,
    send: Send,
    rnd: int,
    cohort: list[str],
    broadcast: RecordDict,
    length: int,
    timing: Timing,
) -> SecureTrainRound:
    """Run one round's protocol over Flower messages; see the module docstring.

    ``broadcast`` is the round's ``train`` content (it gains the setup record) and
    ``length`` the input vector's size (delta coordinates plus the extra slots)."""
    params = secure.params(rnd, len(cohort), length)
    ids = {site: i + 1 for i, site in enumerate(cohort)}
    sent: dict[int, int] = {}

    def exchange(phase: str, contents: Mapping[int, RecordDict]) -> dict[int, bytes]:
        site_of = {i: site for site, i in ids.items()}
        replies = send(wire.MESSAGE_TYPES[phase], {site_of[i]: c for i, c in contents.items()})
        out: dict[int, bytes] = {}
        for site, content in _readable(rnd, phase, replies).items():
            data = wire.read_reply(content)
            sent[ids[site]] = sent.get(ids[site], 0) + len(data)
            out[ids[site]] = data
        return out

    wire.add_setup(broadcast, rnd, cohort, params)
    replies = _readable(
        rnd, "keys", send(wire.MESSAGE_TYPES["keys"], dict.fromkeys(cohort, broadcast))
    )
    trained = [s for s in cohort if s in replies]
    clocks = {s: wire.read_clock(replies[s]) for s in trained}
    round_timing = timing([s for s in cohort if s not in replies], clocks)
    result = secure.start(rnd, cohort, sum(c["clipped"] for c in clocks.values()))
    if not trained:
        result.abort_reason = no_input_reason(len(cohort))
        return SecureTrainRound(result, round_timing, trained)
    advertised: dict[int, bytes] = {}
    for s in trained:
        advertised[ids[s]] = data = wire.read_reply(replies[s])
        sent[ids[s]] = len(data)
    late = {ids[s] for s in trained if s not in round_timing.on_time}
    drop = secure.planned_drops(rnd, sorted(advertised), late)

    def active(phase: str, candidates: list[int]) -> list[int]:
        stop = PHASES.index(phase)
        return [i for i in candidates if i not in drop or PHASES.index(drop[i]) > stop]

    names = {ids[s]: s for s in trained}
    coordinator = SecAggCoordinator(params, MaskPRG(params.length, params.bits), len(cohort))
    payloads: dict[int, bytes] = {}
    try:
        key_list = coordinator.collect_keys(advertised)
        shares = exchange(
            "shares",
            {
                i: wire.key_list_content(rnd, coordinator.key_list_for(i))
                for i in active("shares", sorted(key_list.keys))
            },
        )
        relayed = coordinator.relay_shares(shares)
        payloads = exchange(
            "masked",
            {i: wire.relayed_content(rnd, relayed[i]) for i in active("masked", sorted(relayed))},
        )
        survivors = coordinator.collect_masked(payloads)
        unmasking = wire.survivors_content(rnd, survivors)
        responses = exchange(
            "unmask", dict.fromkeys(active("unmask", sorted(survivors.sites)), unmasking)
        )
        total = coordinator.unmask(responses)
    except SecAggAbort as err:
        return SecureTrainRound(
            finish(rnd, result, names, payloads, sent, err), round_timing, trained
        )
    outcome = SecureSum(total, sorted(survivors.sites), coordinator.log, dict(sent))
    return SecureTrainRound(
        finish(rnd, result, names, payloads, sent, outcome), round_timing, trained
    )
