"""Runs one masking round between site and coordinator state machines, in one process.

This is the transport the in-process engine uses: it encodes every site message to bytes,
hands the coordinator those bytes only, and relays the coordinator's replies. ``drop`` makes
sites fall silent from a given phase on (``"keys"``, ``"shares"``, ``"masked"`` or
``"unmask"``: the first message they do not send), which is how dropouts are simulated;
the coordinator recovers them while at least ``t`` sites remain, else raises
:class:`~medsilo.secure.protocol.SecAggAbort`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from medsilo.secure.coordinator import CoordinatorLog, SecAggCoordinator
from medsilo.secure.fixed_point import Ring
from medsilo.secure.prg import MaskPRG
from medsilo.secure.protocol import SecAggParams
from medsilo.secure.site import SecAggSite

PHASES = ("keys", "shares", "masked", "unmask")
#: ``(phase, sender, encoded message) -> bytes actually delivered`` (tests tamper here).
Wire = Callable[[str, int, bytes], bytes]


@dataclass
class SecureSum:
    """The unmasked sum of the survivors' inputs and what the round cost."""

    total: Ring
    survivors: list[int]
    log: CoordinatorLog
    bytes_up: dict[int, int] = field(default_factory=dict)

    @property
    def recovered(self) -> list[int]:
        """Sites that shared keys but whose masked input never arrived (masks removed)."""
        return sorted(set(self.log.shared) - set(self.survivors))


def secure_sum(
    inputs: Mapping[int, Ring],
    params: SecAggParams,
    drop: Mapping[int, str] | None = None,
    wire: Wire | None = None,
    cohort: int | None = None,
) -> SecureSum:
    """Run the protocol for ``inputs`` (site id -> encoded vector); see the module doc.

    ``cohort`` is the number of sites invited (default: ``len(inputs)``)."""
    drop = drop or {}
    bad = {p for p in drop.values() if p not in PHASES}
    if bad:
        raise ValueError(f"unknown dropout phase(s) {sorted(bad)}; use {PHASES}")
    prg = MaskPRG(params.length, params.bits)
    sites = {i: SecAggSite(i, x, params, prg) for i, x in inputs.items()}
    coordinator = SecAggCoordinator(params, prg, cohort or len(inputs))
    sent: dict[int, int] = dict.fromkeys(sites, 0)

    def active(phase: str) -> list[int]:
        stop = PHASES.index(phase)
        return [i for i in sites if i not in drop or PHASES.index(drop[i]) > stop]

    def deliver(phase: str, messages: Mapping[int, bytes]) -> dict[int, bytes]:
        out = {}
        for i, data in messages.items():
            sent[i] += len(data)
            out[i] = wire(phase, i, data) if wire is not None else data
        return out

    key_list = coordinator.collect_keys(
        deliver("keys", {i: sites[i].advertise().encode() for i in active("keys")})
    )
    relayed = coordinator.relay_shares(
        deliver(
            "shares",
            {
                i: sites[i].share_keys(key_list).encode()
                for i in active("shares")
                if i in key_list.keys
            },
        )
    )
    survivors = coordinator.collect_masked(
        deliver(
            "masked",
            {
                i: sites[i].masked_input(relayed[i]).encode()
                for i in active("masked")
                if i in relayed
            },
        )
    )
    total = coordinator.unmask(
        deliver(
            "unmask",
            {
                i: sites[i].unmask(survivors).encode()
                for i in active("unmask")
                if i in survivors.sites
            },
        )
    )
    return SecureSum(total, sorted(survivors.sites), coordinator.log, sent)
