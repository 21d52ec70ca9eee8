"""The coordinator's half of the masking protocol: relay, collect, and unmask only the sum.

Each method takes the raw messages that arrived in one phase, keyed by the transport's
sender id, and returns what the coordinator sends next. A message that does not parse, that
claims another sender, or that is inconsistent (wrong vector length, missing or doubled
shares) is rejected with its reason in :attr:`SecAggCoordinator.rejected` and its sender is
treated as dropped. If fewer than ``t`` sites remain at any phase the round aborts with
:class:`~medsilo.secure.protocol.SecAggAbort` and no sum exists.

Unmasking (after Bonawitz et al. 2017, round 4): with shares from at least ``t`` responders,
reconstruct ``b_j`` for every survivor ``j in U3`` and ``s_j^SK`` for every site that shared
keys but sent no masked input (``U2 \\ U3``), then::

    sum_{j in U3} x_j = sum_{j in U3} y_j - sum_{j in U3} PRG(b_j)
                        - sum_{d in U2 \\ U3} sum_{j in U3} sign(j, d) PRG(KA(s_d^SK, s_j^PK))

A reconstructed ``b_j`` must hash to the commitment sent in round 1 and a reconstructed
``s_d^SK`` must match its advertised public key; otherwise a share was tampered with and
the round aborts. The coordinator only ever holds masked vectors and this sum.

Under SecAgg+ (``params.neighbours > 0``, Bell et al. 2020) every "each other site" above
means "each neighbour": a site's shares go to its neighbours only, so its ``b_j`` or
``s_j^SK`` is reconstructed from ``t`` of its neighbours (and itself), and a dropped site's
pairwise masks are regenerated with its surviving neighbours only. Besides the global
quorum, each phase checks every remaining site's neighbourhood: one left with fewer than
``t`` remaining members aborts the round, naming the site, since its secret could not be
reconstructed and the sum would be wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from medsilo.secure import shamir
from medsilo.secure.fixed_point import Ring, reduce
from medsilo.secure.keys import agree
from medsilo.secure.messages import (
    AdvertiseKeys,
    KeyList,
    MalformedMessage,
    MaskedInput,
    RelayedShares,
    ShareKeys,
    SiteMessage,
    Survivors,
    UnmaskShares,
    parse,
)
from medsilo.secure.prg import SEED_BYTES, MaskPRG
from medsilo.secure.protocol import SecAggAbort, SecAggError, SecAggParams, check_quorum
from medsilo.secure.site import mask_sign


@dataclass
class CoordinatorLog:
    """What the coordinator saw: bytes per sender and phase, rejections, who dropped when."""

    bytes_received: dict[int, int] = field(default_factory=dict)
    rejected: dict[int, str] = field(default_factory=dict)
    advertised: list[int] = field(default_factory=list)
    shared: list[int] = field(default_factory=list)
    masked: list[int] = field(default_factory=list)
    responded: list[int] = field(default_factory=list)


class SecAggCoordinator:
    def __init__(
        self, params: SecAggParams, prg: MaskPRG | None = None, cohort: int | None = None
    ) -> None:
        """``cohort``: how many sites were invited (for messages); default: who advertised."""
        self.params = params
        self.cohort = cohort
        self.prg = prg or MaskPRG(params.length, params.bits)
        self.log = CoordinatorLog()
        self._phase = 0
        self._keys: dict[int, AdvertiseKeys] = {}
        self._commitments: dict[int, bytes] = {}
        #: The masked inputs summed as they arrive (``U3``: who sent one), not kept apart.
        self._masked_sum = np.zeros(params.length, dtype=self.prg.dtype)
        self._u3: set[int] = set()

    # --- plumbing ---------------------------------------------------------------------

    def _step(self, expected: int, name: str) -> None:
        if self._phase != expected:
            raise SecAggError(f"coordinator: {name} called out of order")
        self._phase += 1

    def _accept(
        self, received: Mapping[int, bytes], kind: type[SiteMessage], allowed: set[int] | None
    ) -> Iterator[tuple[int, SiteMessage]]:
        """The well-formed messages of ``kind``, read one at a time in sender order (a
        mapping that makes its values on demand is never held in memory at once)."""
        for sender in sorted(received):
            data = received[sender]
            self.log.bytes_received[sender] = self.log.bytes_received.get(sender, 0) + len(data)
            if allowed is not None and sender not in allowed:
                self._reject(sender, "sent a message but is not part of this phase")
                continue
            try:
                msg = parse(data)
            except MalformedMessage as err:
                self._reject(sender, str(err))
                continue
            if not isinstance(msg, kind) or msg.site != sender:
                self._reject(sender, f"expected a {kind.__name__} from itself")
                continue
            yield sender, msg

    def _reject(self, sender: int, reason: str) -> None:
        self.log.rejected.setdefault(sender, reason)

    def _check_neighbourhoods(self, phase: str, present: set[int], owners: set[int]) -> None:
        """SecAgg+: abort unless every owner's neighbourhood keeps ``t`` sites of ``present``
        (the owner counts when present: it holds a share of its own secrets)."""
        if not self.params.neighbours:
            return
        for i in sorted(owners):
            local = len(self.params.peers(i, present)) + (i in present)
            near = self.params.neighbourhood(i) or frozenset()
            check_quorum(self.params.where(phase, i), local, len(near) + 1, self.params.threshold)

    def key_list_for(self, site: int) -> KeyList:
        """The keys ``site`` needs: its neighbours' and its own (everyone's: complete graph)."""
        if not self.params.neighbours:
            return KeyList(dict(self._keys))
        local = self.params.peers(site, self._keys) | {site}
        return KeyList({j: self._keys[j] for j in sorted(local)})  # _keys is in id order

    # --- the four phases ----------------------------------------------------------------

    def collect_keys(self, received: Mapping[int, bytes]) -> KeyList:
        self._step(0, "collect_keys")
        msgs = self._accept(received, AdvertiseKeys, None)
        self._keys = {s: m for s, m in msgs if isinstance(m, AdvertiseKeys) and s >= 1}
        self.log.advertised = sorted(self._keys)
        invited = self.cohort if self.cohort is not None else len(received)
        check_quorum("key advertisement", len(self._keys), invited, self.params.threshold)
        self._check_neighbourhoods("key advertisement", set(self._keys), set(self._keys))
        return KeyList(dict(self._keys))

    def relay_shares(self, received: Mapping[int, bytes]) -> dict[int, RelayedShares]:
        self._step(1, "relay_shares")
        u1 = set(self._keys)
        msgs: dict[int, ShareKeys] = {}
        for s, m in self._accept(received, ShareKeys, u1):
            assert isinstance(m, ShareKeys)
            if set(m.sealed) != self.params.peers(s, u1):
                whom = "its neighbours" if self.params.neighbours else "the other sites"
                self._reject(s, f"sealed shares are not addressed to exactly {whom}")
                continue
            msgs[s] = m
        self._commitments = {s: m.b_commitment for s, m in msgs.items()}
        self.log.shared = sorted(msgs)
        check_quorum("key sharing", len(msgs), len(u1), self.params.threshold)
        self._check_neighbourhoods("key sharing", set(msgs), set(msgs))
        relayed: dict[int, dict[int, bytes]] = {j: {} for j in msgs}
        for i, m in msgs.items():  # O(k) a sender, not a scan of every sender per recipient
            for j, sealed in m.sealed.items():
                if j in relayed:
                    relayed[j][i] = sealed
        return {j: RelayedShares(shares) for j, shares in relayed.items()}

    def collect_masked(self, received: Mapping[int, bytes]) -> Survivors:
        self._step(2, "collect_masked")
        u2 = set(self._commitments)
        nbytes = self.params.length * np.dtype(self.prg.dtype).itemsize
        for s, m in self._accept(received, MaskedInput, u2):
            assert isinstance(m, MaskedInput)
            if len(m.values) != nbytes:
                self._reject(s, f"masked vector has {len(m.values)} bytes, expected {nbytes}")
                continue
            np.add(self._masked_sum, np.frombuffer(m.values, self.prg.dtype), out=self._masked_sum)
            self._u3.add(s)
        self.log.masked = sorted(self._u3)
        check_quorum("masked input", len(self._u3), len(u2), self.params.threshold)
        self._check_neighbourhoods("masked input", self._u3, u2)
        return Survivors(frozenset(self._u3))

    def unmask(self, received: Mapping[int, bytes]) -> Ring:
        """The unmasked sum of the survivors' inputs, mod ``2**bits``."""
        self._step(3, "unmask")
        u3 = set(self._u3)
        dropped = set(self._commitments) - u3
        responses: dict[int, UnmaskShares] = {}
        for s, m in self._accept(received, UnmaskShares, u3):
            assert isinstance(m, UnmaskShares)
            b_owners = self.params.peers(s, u3) | {s}
            if set(m.b_shares) != b_owners or set(m.sk_shares) != self.params.peers(s, dropped):
                self._reject(
                    s, "unmasking shares are not exactly b for survivors, s_SK for dropped"
                )
                continue
            responses[s] = m
        self.log.responded = sorted(responses)
        t = self.params.threshold
        check_quorum("unmasking", len(responses), len(u3), t)
        self._check_neighbourhoods("unmasking", set(responses), set(self._commitments))
        lagranges: dict[tuple[int, ...], dict[int, int]] = {}

        def secret(owner: int, table: str) -> bytes:
            holders = tuple(
                sorted(
                    self.params.peers(owner, responses) | ({owner} if owner in responses else set())
                )[:t]
            )
            if holders not in lagranges:  # one set for every owner on the complete graph
                lagranges[holders] = shamir.lagrange_at_zero(holders)
            shares = {
                h: shamir.share_from_bytes(getattr(responses[h], table)[owner]) for h in holders
            }
            try:
                return shamir.combine(shares, lagranges[holders], SEED_BYTES)
            except ValueError:
                raise SecAggAbort(self._tampered(owner)) from None

        total = self._masked_sum
        for j in sorted(u3):
            b = secret(j, "b_shares")
            if hashlib.sha256(b).digest() != self._commitments[j]:
                raise SecAggAbort(self._tampered(j))
            self.prg.add_into(total, b, -1)
        for d in sorted(dropped):
            sk = secret(d, "sk_shares")
            public = X25519PrivateKey.from_private_bytes(sk).public_key()
            if public.public_bytes(Encoding.Raw, PublicFormat.Raw) != self._keys[d].s_public:
                raise SecAggAbort(self._tampered(d))
            for j in sorted(self.params.peers(d, u3)):
                seed = agree(sk, self._keys[j].s_public, self.params.info("mask"))
                self.prg.add_into(total, seed, -mask_sign(j, d))
        self._masked_sum = np.zeros(0, dtype=self.prg.dtype)
        return reduce(total, self.params.bits)

    @staticmethod
    def _tampered(owner: int) -> str:
        return (
            f"secure aggregation aborted: the secret reconstructed for site {owner} does not "
            "match its commitment (a share was tampered with); nothing is applied"
        )
