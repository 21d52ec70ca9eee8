"""The site's half of the masking protocol (Bonawitz et al. 2017), as a state machine.

A site is created with its input ``x_i`` already encoded in ``Z_{2**k}``
(:mod:`medsilo.secure.fixed_point`) and then answers the coordinator's four requests in
order; calling them out of order raises :class:`~medsilo.secure.protocol.SecAggError`.

0. :meth:`SecAggSite.advertise`: fresh X25519 pairs ``c_i`` and ``s_i``; send both public keys.
1. :meth:`SecAggSite.share_keys`: given the key list ``U1`` (at least ``t`` sites, distinct
   keys), draw the self-mask seed ``b_i``, split ``s_i^SK`` and ``b_i`` ``t``-of-``|U1|`` with
   Shamir, and seal each other site's pair of shares with AES-GCM under ``KA(c_i, c_j)``.
   Under SecAgg+ (``params.neighbours > 0``) ``U1``, ``U2`` and ``U3`` here and below mean
   their members among the site's neighbours (and itself): it never shares with, masks
   with or reveals anything about a site outside its neighbourhood.
   Also send ``SHA-256(b_i)`` so a tampered share is detected at reconstruction.
2. :meth:`SecAggSite.masked_input`: given the shares relayed to it (their senders are ``U2``),
   send ``y_i = x_i + PRG(b_i) + sum_{j in U2, j != i} sign(i, j) PRG(KA(s_i, s_j))`` with
   ``sign = +1`` for ``i < j`` and ``-1`` otherwise, so pairwise masks cancel in the sum.
3. :meth:`SecAggSite.unmask`: given the survivor list ``U3`` (at least ``t``, a subset of
   ``U2`` containing itself), send its shares of ``b_j`` for ``j`` in ``U3`` and of
   ``s_j^SK`` for ``j`` in ``U2 \\ U3``. Never both for one site: that would unmask ``j``.

The plaintext ``x_i`` never leaves this object; only :class:`MaskedInput` depends on it.

:meth:`SecAggSite.snapshot` / :meth:`SecAggSite.from_snapshot` turn the whole state (private
keys, ``b_i``, ``x_i``, shares received) into plain bytes and ints and back, for a runtime
that rebuilds the site between messages (Flower keeps it in the node's ``context.state``,
which never leaves the site).
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from medsilo.secure import shamir
from medsilo.secure.fixed_point import Ring, reduce
from medsilo.secure.keys import agree, open_shares, private_bytes, public_bytes, seal_shares
from medsilo.secure.messages import (
    AdvertiseKeys,
    KeyList,
    MalformedMessage,
    MaskedInput,
    RelayedShares,
    ShareKeys,
    Survivors,
    UnmaskShares,
    parse,
)
from medsilo.secure.prg import SEED_BYTES, MaskPRG
from medsilo.secure.protocol import SecAggError, SecAggParams, check_quorum

#: What :meth:`SecAggSite.snapshot` returns: only bytes, ints and lists of them.
Snapshot = dict[str, int | bytes | list[int] | list[bytes]]


def mask_sign(i: int, j: int) -> int:
    """Sign of ``PRG(s_ij)`` in ``y_i``: ``+1`` if ``i < j`` else ``-1`` (cancels in the sum)."""
    return 1 if i < j else -1


class SecAggSite:
    def __init__(self, site: int, x: Ring, params: SecAggParams, prg: MaskPRG | None = None):
        if site < 1:
            raise ValueError(f"site ids are Shamir points and start at 1, got {site}")
        if x.shape != (params.length,):
            raise ValueError(f"input has shape {x.shape}, the round expects ({params.length},)")
        self.site = site
        self.params = params
        self.prg = prg or MaskPRG(params.length, params.bits)
        self._x = x
        self._phase = 0
        self._c = X25519PrivateKey.generate()
        self._s = X25519PrivateKey.generate()
        self._b = b""
        self._keys: dict[int, AdvertiseKeys] = {}
        self._own: tuple[int, int] = (0, 0)  # own shares of s_SK and b
        self._received: dict[int, bytes] = {}  # sealed shares by sender (U2 \ {i})

    def snapshot(self) -> Snapshot:
        """Everything this site holds, secrets included: keep it at the site only."""
        return {
            "site": self.site,
            "threshold": self.params.threshold,
            "bits": self.params.bits,
            "length": self.params.length,
            "label": self.params.label,
            "neighbours": self.params.neighbours,
            "cohort": self.params.cohort,
            "phase": self._phase,
            "x": np.ascontiguousarray(self._x, dtype=self.prg.dtype).tobytes(),
            "c": private_bytes(self._c),
            "s": private_bytes(self._s),
            "b": self._b,
            "keys": [self._keys[j].encode() for j in sorted(self._keys)],
            "own": [shamir.share_to_bytes(y) for y in self._own] if self._b else [],
            "received_from": sorted(self._received),
            "received": [self._received[j] for j in sorted(self._received)],
        }

    @classmethod
    def from_snapshot(cls, snap: Snapshot, prg: MaskPRG | None = None) -> SecAggSite:
        """The site :meth:`snapshot` described, ready for its next phase."""

        def num(key: str) -> int:
            value = snap[key]
            if not isinstance(value, int):
                raise MalformedMessage(f"site snapshot field {key!r} is not an int")
            return value

        def raw(key: str) -> bytes:
            value = snap[key]
            if not isinstance(value, bytes):
                raise MalformedMessage(f"site snapshot field {key!r} is not bytes")
            return value

        def many(key: str) -> list[bytes]:
            value = snap[key]
            if not isinstance(value, list) or not all(isinstance(v, bytes) for v in value):
                raise MalformedMessage(f"site snapshot field {key!r} is not a list of bytes")
            return [bytes(v) for v in value if isinstance(v, bytes)]

        params = SecAggParams(
            num("threshold"),
            num("bits"),
            num("length"),
            raw("label"),
            num("neighbours"),
            num("cohort"),
        )
        prg = prg or MaskPRG(params.length, params.bits)
        x = np.frombuffer(raw("x"), dtype=prg.dtype).copy()
        site = cls(num("site"), x, params, prg)
        site._phase = num("phase")
        site._c = X25519PrivateKey.from_private_bytes(raw("c"))
        site._s = X25519PrivateKey.from_private_bytes(raw("s"))
        site._b = raw("b")
        keys = [parse(k) for k in many("keys")]
        site._keys = {k.site: k for k in keys if isinstance(k, AdvertiseKeys)}
        own = [shamir.share_from_bytes(y) for y in many("own")]
        site._own = (own[0], own[1]) if own else (0, 0)
        senders = snap["received_from"]
        if not isinstance(senders, list) or not all(isinstance(j, int) for j in senders):
            raise MalformedMessage("site snapshot field 'received_from' is not a list of ints")
        received = many("received")
        site._received = {
            j: ct for j, ct in zip(senders, received, strict=True) if isinstance(j, int)
        }
        return site

    def _step(self, expected: int, name: str) -> None:
        if self._phase != expected:
            raise SecAggError(f"site {self.site}: {name} called out of order")
        self._phase += 1

    def advertise(self) -> AdvertiseKeys:
        self._step(0, "advertise")
        return AdvertiseKeys(self.site, public_bytes(self._c), public_bytes(self._s))

    def share_keys(self, key_list: KeyList) -> ShareKeys:
        self._step(1, "share_keys")
        local = self.params.peers(self.site, key_list.keys) | {self.site}
        keys = {j: k for j, k in key_list.keys.items() if j in local}
        check_quorum(
            self.params.where("key sharing (site view)", self.site),
            len(keys),
            len(keys),
            self.params.threshold,
        )
        if self.site not in keys or keys[self.site].c_public != public_bytes(self._c):
            raise SecAggError(f"site {self.site}: the key list does not contain its own keys")
        publics = [k.c_public for k in keys.values()] + [k.s_public for k in keys.values()]
        if len(set(publics)) != len(publics):
            raise SecAggError(f"site {self.site}: the key list repeats a public key")
        self._keys = dict(keys)
        self._b = os.urandom(SEED_BYTES)
        ids = sorted(keys)
        t = self.params.threshold
        sk_shares = shamir.split(private_bytes(self._s), t, ids)
        b_shares = shamir.split(self._b, t, ids)
        self._own = (sk_shares[self.site], b_shares[self.site])
        sealed = {}
        for j in ids:
            if j == self.site:
                continue
            channel = agree(self._c, keys[j].c_public, self.params.info("channel"))
            sealed[j] = seal_shares(
                channel,
                self.site,
                j,
                shamir.share_to_bytes(sk_shares[j]),
                shamir.share_to_bytes(b_shares[j]),
            )
        return ShareKeys(self.site, hashlib.sha256(self._b).digest(), sealed)

    def masked_input(self, relayed: RelayedShares) -> MaskedInput:
        self._step(2, "masked_input")
        unknown = set(relayed.sealed) - set(self._keys) | ({self.site} & set(relayed.sealed))
        if unknown:
            raise SecAggError(f"site {self.site}: relayed shares from unexpected sites {unknown}")
        check_quorum(
            self.params.where("masked input (site view)", self.site),
            len(relayed.sealed) + 1,
            len(self._keys),
            self.params.threshold,
        )
        self._received = dict(relayed.sealed)
        y = np.array(self._x, copy=True)
        self.prg.add_into(y, self._b)
        for j in sorted(self._received):
            seed = agree(self._s, self._keys[j].s_public, self.params.info("mask"))
            self.prg.add_into(y, seed, mask_sign(self.site, j))
        return MaskedInput(self.site, reduce(y, self.params.bits).tobytes())

    def unmask(self, survivors: Survivors) -> UnmaskShares:
        self._step(3, "unmask")
        u2 = set(self._received) | {self.site}
        near = self.params.neighbourhood(self.site)
        u3 = {j for j in survivors.sites if near is None or j in near or j == self.site}
        if not u3 <= u2 or self.site not in u3:
            raise SecAggError(
                f"site {self.site}: the survivor list is inconsistent with the sites that "
                "shared keys; refusing to reveal shares"
            )
        check_quorum(
            self.params.where("unmasking (site view)", self.site),
            len(u3),
            len(u2),
            self.params.threshold,
        )
        b_shares: dict[int, bytes] = {self.site: shamir.share_to_bytes(self._own[1])}
        sk_shares: dict[int, bytes] = {}
        for j, record in sorted(self._received.items()):
            channel = agree(self._c, self._keys[j].c_public, self.params.info("channel"))
            sk_share, b_share = open_shares(channel, j, self.site, record)
            if j in u3:
                b_shares[j] = b_share
            else:
                sk_shares[j] = sk_share
        return UnmaskShares(self.site, b_shares, sk_shares)
