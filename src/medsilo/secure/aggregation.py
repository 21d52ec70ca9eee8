"""Secure aggregation of a round's updates for the federation runtimes.

Site side (:func:`encode_site_input`): the site multiplies its delta by its aggregation
weight ``w_i`` (its example count, or 1 for algorithms that weigh sites equally), clips every
coordinate to ``[-clip, clip]`` and encodes it in fixed point; two more slots carry ``w_i``
(as an exact integer) and ``w_i * train_loss_i`` (fixed point). The protocol
(:mod:`medsilo.secure.exchange`) then reveals to the coordinator only the sums
``S = sum_i w_i delta_i``, ``W = sum_i w_i`` and ``L = sum_i w_i loss_i`` over the survivors.

With ``mechanism: ckks`` the same vector (without fixed point) is encrypted instead
(:mod:`medsilo.secure.ckks_round`).

Coordinator side (:func:`secure_outcome`): decode the sums and hand the algorithm's
aggregation one synthetic update ``S / W`` (repeated ``m`` times, the number of survivors,
for equal-weight algorithms such as DP-FedAvg, whose noise scale depends on ``m``): for every
algorithm whose aggregation is a weighted mean of the deltas (possibly plus central noise),
this gives the same global delta as the plain run, within fixed-point resolution.

What the coordinator can no longer check: per-update norms and structure (it never sees
an update). The site's own clip bounds every coordinate it contributes, so a site can move
the sum by at most ``clip`` per coordinate; that is the remaining defence against a
poisoned update. A round that aborts (fewer than ``t`` sites left) is skipped: nothing is
applied and the server state is unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from medsilo.algorithms.base import Algorithm, ServerState
from medsilo.config import RunConfig
from medsilo.models.weights import Layout
from medsilo.secure.config import SecureAggregationConfig
from medsilo.secure.exchange import SecureSum, secure_sum
from medsilo.secure.fixed_point import CHUNK, FixedPoint, Ring, reduce
from medsilo.secure.protocol import SecAggAbort, SecAggParams
from medsilo.secure.result import SecureRound, aggregation_weight, placeholder

if TYPE_CHECKING:  # imported when CKKS is used: TenSEAL costs time at every start-up
    from medsilo.secure.ckks_round import CKKSAggregation
from medsilo.types import Update, Weights, unflatten

log = logging.getLogger(__name__)


def encode_site_input(update: Update, weight: int, encoder: FixedPoint) -> tuple[Ring, int]:
    """``(encoded [w * delta, w, w * loss], clipped coordinates)``: what a site masks."""
    limit = encoder.max_abs_int
    if not 0 <= weight <= limit:
        raise ValueError(
            f"site {update.site!r}: aggregation weight {weight} exceeds {limit}, the most "
            f"{encoder.bits}-bit integers allow for {encoder.num_sites} sites; raise "
            "secure_aggregation.bits"
        )
    loss = float(update.metrics.get("train_loss", 0.0))
    loss = loss if np.isfinite(loss) else 0.0
    size = sum(int(np.size(d)) for d in update.delta)
    out = np.empty(size + 2, dtype=encoder.dtype)
    clipped = 0
    pos = 0
    for tensor in update.delta:  # chunk by chunk: no float64 copy of the whole delta
        flat = np.asarray(tensor).ravel()
        for start in range(0, flat.size, CHUNK):
            part = flat[start : start + CHUNK].astype(np.float64) * weight
            out[pos : pos + part.size], c = encoder.encode(part)
            clipped += c
            pos += part.size
    out[-2] = weight
    (out[-1],), c = encoder.encode(np.array([weight * loss]))
    return reduce(out, encoder.bits), clipped + c


class SecureAggregation:
    """Secure aggregation of a round's site updates for the in-process engine: runs the
    masking protocol (:mod:`medsilo.secure.exchange`) or CKKS (:mod:`.ckks_round`)."""

    def __init__(
        self,
        cfg: SecureAggregationConfig,
        equal_weights: bool,
        run_name: str,
        seed: int,
        cohort: int,
    ) -> None:
        """``equal_weights``: the algorithm weighs every site equally (its capabilities'
        ``aggregation`` is ``equal_mean``), so each site's weight is 1, not its size."""
        self.cfg = cfg
        self.equal_weights = equal_weights
        self.run_name = run_name
        self.seed = seed
        #: The engine's three CKKS roles, made by the first :meth:`run`: never in a Flower
        #: process, where the key holder is a site (:mod:`medsilo.runtime.flower.ckks_server`).
        self.ckks: CKKSAggregation | None = None
        if cfg.mechanism == "ckks":
            return
        # Fail at start-up, not mid-run, when the cohort cannot meet the threshold or ring.
        cfg.threshold_for(cohort)
        FixedPoint(cfg.bits, cfg.clip, cohort)

    def dropouts(self, rnd: int, candidates: list[int]) -> dict[int, str]:
        """Simulated dropouts: ``floor(simulated_dropout * n)`` of ``candidates`` fall silent
        after sharing keys (before their masked input), chosen by ``(seed, round)``."""
        count = int(self.cfg.simulated_dropout * len(candidates))
        if count == 0:
            return {}
        rng = np.random.default_rng([self.seed, rnd, 0x5EC])
        return {int(i): "masked" for i in rng.choice(candidates, size=count, replace=False)}

    def run(
        self, rnd: int, cohort: list[str], updates: list[Update], late: set[str] | None = None
    ) -> SecureRound:
        """Secure sum of ``updates`` for a round sampled as ``cohort``. Cohort sites without an
        update never join; ``late`` sites share keys but their masked input misses the round."""
        if self.cfg.mechanism == "ckks":
            if self.ckks is None:
                from medsilo.secure.ckks_round import CKKSAggregation  # lazy: TenSEAL is heavy

                self.ckks = CKKSAggregation()  # fresh keys per run
            absent = set(self.dropouts(rnd, list(range(len(updates)))))
            return self.ckks.run(
                self.equal_weights, self.cfg.clip, cohort, updates, late or set(), absent
            )
        encoder = self.encoder(len(cohort))
        ids = {cohort.index(u.site) + 1: u for u in updates}
        inputs: dict[int, Ring] = {}
        clipped = 0
        for i, u in ids.items():
            inputs[i], c = encode_site_input(u, aggregation_weight(self.equal_weights, u), encoder)
            clipped += c
        result = self.start(rnd, cohort, clipped)
        if not inputs:
            result.abort_reason = no_input_reason(len(cohort))
            return result
        late_ids = {i for i, u in ids.items() if u.site in (late or set())}
        drop = self.planned_drops(rnd, sorted(inputs), late_ids)
        length = next(iter(inputs.values())).size
        payloads: dict[int, bytes] = {}
        sent: dict[int, int] = {}

        def keep_masked(phase: str, sender: int, data: bytes) -> bytes:
            sent[sender] = sent.get(sender, 0) + len(data)
            if phase == "masked":
                payloads[sender] = data
            return data

        names = {i: u.site for i, u in ids.items()}
        try:
            params = self.params(rnd, len(cohort), length)
            s = secure_sum(inputs, params, drop, keep_masked, len(cohort))
        except SecAggAbort as err:
            return finish(rnd, result, names, payloads, sent, err)
        return finish(rnd, result, names, payloads, sent, s)

    # --- the pieces every transport shares (this engine's and the Flower apps') ---------

    def encoder(self, cohort: int) -> FixedPoint:
        """How a site of a ``cohort``-site round encodes its input."""
        return FixedPoint(self.cfg.bits, self.cfg.clip, cohort)

    def params(self, rnd: int, cohort: int, length: int) -> SecAggParams:
        """The public protocol parameters of round ``rnd`` (the label binds keys to it)."""
        label = f"{self.run_name}/{rnd}".encode()
        k, t = self.cfg.shape_for(cohort)
        return SecAggParams(t, self.cfg.bits, length, label, k, cohort)

    def start(self, rnd: int, cohort: list[str], clipped: int) -> SecureRound:
        """The round's result before the protocol runs; aborted if no site has an input."""
        if clipped:
            log.warning("round %d: secure aggregation clipped %d coordinates", rnd, clipped)
        n = len(cohort)
        k, t = self.cfg.shape_for(n)
        result = SecureRound([], list(cohort), t, self.encoder(n), neighbours=k)
        result.clipped = clipped
        return result

    def planned_drops(self, rnd: int, joined: list[int], late: set[int]) -> dict[int, str]:
        """Protocol ids (1-based cohort positions) that fall silent before their masked
        input: the simulated dropouts among ``joined`` plus the ``late`` sites."""
        drop = self.dropouts(rnd, joined)
        drop.update(dict.fromkeys(late, "masked"))
        return drop


def no_input_reason(cohort: int) -> str:
    """Why a round in which no sampled site sent an input aborts."""
    return f"no site of the {cohort} sampled sent an update"


def finish(
    rnd: int,
    result: SecureRound,
    names: Mapping[int, str],
    payloads: Mapping[int, bytes],
    sent: Mapping[int, int],
    outcome: SecureSum | SecAggAbort,
) -> SecureRound:
    """Fill ``result`` from what one run of the protocol delivered.

    ``names`` maps protocol ids to sites (in cohort order), ``payloads`` holds each masked
    input received and ``sent`` the bytes each site sent over all phases."""
    result.updates = [placeholder(site, payloads[i]) for i, site in names.items() if i in payloads]
    result.bytes_up = {names[i]: b for i, b in sorted(sent.items())}
    if isinstance(outcome, SecAggAbort):
        log.warning("round %d: %s", rnd, outcome)
        result.abort_reason = str(outcome)
        return result
    result.total = outcome.total
    result.survivors = [names[i] for i in outcome.survivors]
    result.recovered = [names[i] for i in outcome.recovered]
    result.rejected = {names[i]: why for i, why in outcome.log.rejected.items()}
    return result


def secure_outcome(
    secure: SecureRound,
    algorithm: Algorithm,
    weights: Weights,
    server_state: ServerState,
    layout: Layout,
    num_sites: int,
    needed: int,
) -> tuple[Weights | None, ServerState, str | None]:
    """``(global delta or None, server state, skip reason)`` from the unmasked sums."""
    if not secure.ok:
        return None, server_state, secure.abort_reason
    if len(secure.survivors) < needed:
        return (
            None,
            server_state,
            f"{len(secure.survivors)} sites survived, the round needs {needed}",
        )
    delta_sum, weight, _ = secure.sums()
    if weight <= 0:
        return None, server_state, "the surviving sites' total weight is zero"
    np.divide(delta_sum, weight, out=delta_sum)  # sums() made it for this call alone
    mean = unflatten(delta_sum, weights)
    del delta_sum  # the float64 sum is not held while the algorithm aggregates
    equal = algorithm.capabilities.aggregation == "equal_mean"
    copies = len(secure.survivors) if equal else 1
    synthetic = Update(
        site="secure-aggregate",
        delta=mean,
        num_examples=max(1, weight // copies),
        num_steps=0,
    )
    delta, state = algorithm.aggregate(
        weights, [synthetic] * copies, server_state, layout, num_sites
    )
    return delta, state, None


def secure_aggregation(cfg: RunConfig, cohort: int) -> SecureAggregation | None:
    """The runtime's secure aggregation for ``cfg`` (``cohort`` sites a round), or ``None``."""
    secure = cfg.secure_aggregation
    if not secure.enabled:
        return None
    equal_weights = cfg.capabilities().aggregation == "equal_mean"
    return SecureAggregation(secure, equal_weights, cfg.name, cfg.seed, cohort)
