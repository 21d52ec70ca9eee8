"""What a round does around the algorithm: one copy, used by the engine and the Flower apps.

Site side (:class:`SiteSteps`), after :meth:`Algorithm.local_update`:

1. an attacking site (``attack``) poisons its update (its data was poisoned up front);
2. with a codec (``compression``), the delta is encoded, with error feedback, and only the
   bytes travel (``Update.encoded_delta``); the round record counts exactly those bytes.

Coordinator side (:class:`CoordinatorSteps`), before the server optimiser's step:

1. decode compressed deltas (an undecodable payload is a rejection);
2. validate every update (:mod:`medsilo.aggregation.validation`); each rejection is logged
   and listed in the round record;
3. if fewer updates remain than the round needs (``training.min_sites``, or the robust
   rule's minimum), skip the round: the global model and server state stay as they are;
4. aggregate: Krum, Multi-Krum and Bulyan's selection pick updates and norm bounding
   rescales them, then the algorithm's own ``aggregate`` runs on the result, so they
   compose with every algorithm; median, trimmed mean and Bulyan replace the
   sample-weighted mean of the deltas, so they are limited to algorithms whose aggregation
   is that mean (:attr:`~medsilo.algorithms.capabilities.Capabilities.aggregation`; config
   validation refuses SCAFFOLD, FedNova and client-level DP with them).

With secure aggregation (:mod:`medsilo.secure`, engine and Flower apps) the coordinator
holds masked payloads and the survivors' sums instead of updates: steps 1 and 2 cannot run
(config validation refuses codecs and chosen norm checks), step 3 applies to the survivors,
and step 4 is the algorithm's aggregation of the mean ``sum w_i delta_i / sum w_i``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from medsilo.aggregation import robust
from medsilo.aggregation.validation import Rejection, validate_updates
from medsilo.algorithms.base import Algorithm, ServerState, SiteState, SiteTask
from medsilo.algorithms.compatibility import COORDINATE_WISE_RULES
from medsilo.attacks.data import check_attack, poisoned_training_data
from medsilo.attacks.updates import (
    FreeRiderAttack,
    RoundUploads,
    attack_seed,
    free_rider_delta,
    poison_update,
)
from medsilo.compression.codecs import Codec, DecodeError
from medsilo.compression.feedback import RESIDUAL_KEY, compress
from medsilo.config import (
    BulyanConfig,
    KrumConfig,
    NormBoundConfig,
    RobustConfig,
    RunConfig,
    TrimmedMeanConfig,
)
from medsilo.models.weights import Layout
from medsilo.runtime.cohorts import cohort_size
from medsilo.runtime.factory import build_codec
from medsilo.secure.aggregation import secure_outcome
from medsilo.secure.result import SecureRound
from medsilo.training.local import LocalTraining
from medsilo.training.samples import Samples
from medsilo.types import Update, Weights, flatten, unflatten

log = logging.getLogger(__name__)


@dataclass
class SiteTaskFields:
    """What identifies one site's work in one round (see :func:`site_round`)."""

    site: str
    index: int
    round: int
    seed: int
    model: nn.Module
    layout: Layout
    data: Samples
    training: LocalTraining
    state: SiteState
    exploit_indicator: int


def site_seed(seed: int, round_num: int, site_index: int) -> int:
    """Independent, reproducible stream per (run seed, round, site)."""
    return int(np.random.SeedSequence([seed, round_num, site_index]).generate_state(1)[0])


def site_round(
    algorithm: Algorithm,
    steps: SiteSteps,
    task_fields: SiteTaskFields,
    weights: Weights,
    payload: dict[str, Weights],
) -> Update:
    """One site's round, in every runtime: build the :class:`SiteTask` (with the site's
    seeded generator), run :meth:`Algorithm.local_update`, then :meth:`SiteSteps.upload`
    (attacks, compression). ``task_fields.state`` is updated in place."""
    f = task_fields
    task = SiteTask(
        site=f.site,
        round=f.round,
        model=f.model,
        layout=f.layout,
        data=f.data,
        training=f.training,
        generator=torch.Generator().manual_seed(site_seed(f.seed, f.round, f.index)),
        state=f.state,
        exploit_indicator=f.exploit_indicator,
    )
    update = algorithm.local_update(task, weights, payload)
    return steps.upload(update, task.state, f.round, f.index)


def codec_of(cfg: RunConfig) -> Codec | None:
    """The configured codec, or ``None`` when deltas travel uncompressed."""
    return None if cfg.compression.codec == "none" else build_codec(cfg.compression)


def codec_seed(seed: int, rnd: int, site_index: int) -> np.random.Generator:
    """A site's stream for stochastic codecs (QSGD rounding, PowerSGD's start)."""
    return np.random.default_rng([seed, rnd, site_index, 0xC0DEC])


class SiteSteps:
    """The site half: data poisoning, update poisoning, compression."""

    def __init__(self, cfg: RunConfig, site_names: list[str], num_classes: int) -> None:
        check_attack(cfg.attack, site_names, num_classes)
        self.cfg = cfg
        self.site_names = site_names
        self.num_classes = num_classes
        self.codec = codec_of(cfg)
        self.uploads = RoundUploads()  # what a ``copy`` free rider reads

    def training_data(self, site: str, data: Samples) -> Samples:
        """The training set ``site`` trains on (poisoned for a data-poisoning attacker)."""
        index = self.site_names.index(site)
        seed = int(np.random.SeedSequence([self.cfg.seed, index]).generate_state(1)[0])
        return poisoned_training_data(self.cfg.attack, site, data, self.num_classes, seed)

    def upload(self, update: Update, state: SiteState, rnd: int, site_index: int) -> Update:
        """What the site sends; updates the error-feedback residual in ``state``."""
        attack = self.cfg.attack
        if attack is not None and update.site in attack.sites:
            if isinstance(attack, FreeRiderAttack):
                delta = free_rider_delta(update.delta, attack, state, self.uploads, rnd)
            else:
                delta = poison_update(
                    update.delta, attack, attack_seed(self.cfg.seed, rnd, site_index)
                )
            update = replace(update, delta=delta)
        self.uploads.keep(rnd, update.site, update.delta)
        if self.codec is None:
            return update
        compression = self.cfg.compression
        feedback = getattr(compression, "error_feedback", False)
        payload, residual = compress(
            self.codec,
            update.delta,
            state.get(RESIDUAL_KEY),
            codec_seed(self.cfg.seed, rnd, site_index),
            feedback,
        )
        if residual is not None:
            state[RESIDUAL_KEY] = residual
        return replace(update, delta=[], encoded_delta=payload)


@dataclass
class RoundOutcome:
    """What the coordinator made of a round's updates."""

    #: The global delta for the server optimiser, or ``None`` when the round is skipped.
    delta: Weights | None
    server_state: ServerState
    accepted: list[Update]
    rejected: list[Rejection] = field(default_factory=list)
    #: Sites a selecting rule (Krum, Multi-Krum, Bulyan) kept; ``None`` for other rules.
    selected: list[str] | None = None
    skip_reason: str | None = None

    @property
    def skipped(self) -> bool:
        return self.delta is None


def rule_min_updates(rule: RobustConfig) -> int:
    if isinstance(rule, KrumConfig):
        return max(robust.krum_min_updates(rule.f), rule.m or 0)
    if isinstance(rule, BulyanConfig):
        return robust.bulyan_min_updates(rule.f)
    return 1


def _describe(rule: RobustConfig) -> str:
    f = getattr(rule, "f", None)
    return f"robust.rule {rule.rule!r}" + (f" with f={f}" if f is not None else "")


def robust_aggregate(
    rule: RobustConfig,
    algorithm: Algorithm,
    weights: Weights,
    updates: list[Update],
    server_state: ServerState,
    layout: Layout,
    num_sites: int,
) -> tuple[Weights, ServerState, list[str] | None]:
    """``(global delta, server state, sites kept by a selecting rule or None)``."""
    if rule.rule == "none":
        delta, state = algorithm.aggregate(weights, updates, server_state, layout, num_sites)
        return delta, state, None
    if rule.rule in COORDINATE_WISE_RULES and not algorithm.capabilities.coordinate_wise_robust:
        raise ValueError(f"{_describe(rule)} cannot replace {algorithm.name!r}'s aggregation")
    x = np.stack([flatten(u.delta).astype(np.float64) for u in updates])
    selected: list[int] | None = None
    if isinstance(rule, KrumConfig):
        f = rule.f
        selected = [robust.krum(x, f)] if rule.rule == "krum" else robust.multi_krum(x, f, rule.m)
    elif isinstance(rule, NormBoundConfig):
        bounded = robust.norm_bound(x, rule.max_norm)
        updates = [
            replace(u, delta=unflatten(row, u.delta))
            for u, row in zip(updates, bounded, strict=True)
        ]
    else:
        if isinstance(rule, TrimmedMeanConfig):
            combined = robust.trimmed_mean(x, rule.trim)
        elif isinstance(rule, BulyanConfig):
            selected = robust.bulyan_selection(x, rule.f)
            combined = robust.bulyan(x, rule.f)
        else:
            combined = robust.coordinate_median(x)
        names = [updates[i].site for i in selected] if selected is not None else None
        return unflatten(combined, updates[0].delta), server_state, names
    if selected is not None:
        updates = [updates[i] for i in selected]
    delta, state = algorithm.aggregate(weights, updates, server_state, layout, num_sites)
    return delta, state, [u.site for u in updates] if selected is not None else None


def updates_needed(cfg: RunConfig) -> int:
    """How many updates a round needs to aggregate (else it is skipped): ``training.min_sites``
    or the robust rule's minimum, whichever is larger."""
    return max(cfg.training.min_sites, rule_min_updates(cfg.robust))


class CoordinatorSteps:
    """The coordinator half: decode, validate, skip or aggregate robustly."""

    def __init__(self, cfg: RunConfig, layout: Layout, num_sites: int) -> None:
        self.cfg = cfg
        self.layout = layout
        self.codec = codec_of(cfg)
        self.rule = cfg.robust
        self.needed = updates_needed(cfg)
        cohort = cohort_size(num_sites, cfg.training.fraction, cfg.training.min_sites)
        if cohort < rule_min_updates(cfg.robust):
            raise ValueError(
                f"{_describe(cfg.robust)} needs at least {rule_min_updates(cfg.robust)} updates "
                f"a round, but only {cohort} of {num_sites} sites are sampled"
            )

    def decode(
        self, updates: list[Update], weights: Weights
    ) -> tuple[list[Update], list[Rejection]]:
        if self.codec is None:
            return updates, []
        shapes = [w.shape for w in weights]
        decoded: list[Update] = []
        rejected: list[Rejection] = []
        for u in updates:
            if u.encoded_delta is None:
                decoded.append(u)
                continue
            try:
                decoded.append(replace(u, delta=self.codec.decode(u.encoded_delta, shapes)))
            except DecodeError as err:
                rejected.append(Rejection(u.site, f"undecodable {self.codec.name} payload: {err}"))
        return decoded, rejected

    def process(
        self,
        rnd: int,
        algorithm: Algorithm,
        weights: Weights,
        updates: list[Update],
        server_state: ServerState,
        num_sites: int,
        secure: SecureRound | None = None,
    ) -> RoundOutcome:
        if secure is not None:  # secure aggregation: ``updates`` are masked, only sums exist
            return self._secure(rnd, algorithm, weights, updates, server_state, num_sites, secure)
        decoded, rejected = self.decode(updates, weights)
        v = self.cfg.validation
        accepted, more = validate_updates(
            decoded, weights, self.layout.names, v.max_norm, v.max_norm_factor
        )
        order = {u.site: i for i, u in enumerate(updates)}
        rejected = sorted(rejected + more, key=lambda r: order.get(r.site, len(order)))
        for r in rejected:
            log.warning("round %d: rejected the update of site %r: %s", rnd, r.site, r.reason)
        if len(accepted) < self.needed:
            reason = (
                f"{len(accepted)} of {len(updates)} updates accepted, the round needs {self.needed}"
            )
            log.warning("round %d skipped, global model unchanged: %s", rnd, reason)
            return RoundOutcome(None, server_state, accepted, rejected, skip_reason=reason)
        delta, state, selected = robust_aggregate(
            self.rule, algorithm, weights, accepted, server_state, self.layout, num_sites
        )
        return RoundOutcome(delta, state, accepted, rejected, selected)

    def _secure(
        self,
        rnd: int,
        algorithm: Algorithm,
        weights: Weights,
        updates: list[Update],
        server_state: ServerState,
        num_sites: int,
        secure: SecureRound,
    ) -> RoundOutcome:
        """The algorithm's aggregation of the unmasked sums (:mod:`medsilo.secure.aggregation`);
        a round that aborted or has too few survivors is skipped, nothing applied."""
        delta, state, reason = secure_outcome(
            secure, algorithm, weights, server_state, self.layout, num_sites, self.needed
        )
        rejected = [Rejection(site, why) for site, why in secure.rejected.items()]
        accepted = [u for u in updates if u.site in secure.survivors]
        if delta is None:
            log.warning("round %d skipped, global model unchanged: %s", rnd, reason)
            return RoundOutcome(None, server_state, accepted, rejected, skip_reason=reason)
        return RoundOutcome(delta, state, accepted, rejected)
