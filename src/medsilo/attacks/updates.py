"""Model poisoning and free riding: what a misbehaving site sends instead of its honest update.

Poisoning (an attacker that wants to harm the model):

* ``sign_flip``: ``-scale * delta`` (pushes the global model uphill);
* ``scale``: ``scale * delta`` (a boosted update that dominates the mean);
* ``gaussian``: noise of standard deviation ``std`` in place of the update (also the
  *noise* free rider of docs/contribution.md: it sends something that looks like work);
* ``backdoor``: the update trained on triggered data (:mod:`.data`), times ``boost``
  (model replacement when ``boost`` is about the number of sites);
* ``label_flip``: the honest update of a model trained on flipped labels (unchanged here).

Free riding (a site that wants the reward without the work; detected by
:mod:`medsilo.contribution.free_riders`):

* ``free_ride``: returns the model it received, i.e. a zero delta;
* ``stale``: trains once, keeps that upload in its site state and re-sends it every round;
* ``copy``: sends the update its ``source`` sent this round. The sites of one process share
  a :class:`RoundUploads` board (the in-process engine trains every site in site order, and
  the configuration requires the source to come before the copier). Where the source's
  update of the round is not on the board (the source was dropped, or it trains in another
  process), the copier has nothing to copy and returns the model it received.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from medsilo.config import (
    AttackConfig,
    BackdoorAttack,
    CopyAttack,
    FreeRideAttack,
    GaussianAttack,
    ScaleAttack,
    SignFlipAttack,
    StaleAttack,
)
from medsilo.types import Weights, zeros_like

log = logging.getLogger(__name__)

#: The site-state key where a ``stale`` free rider keeps the upload it re-sends.
STALE_UPDATE_KEY = "free_rider_stale_update"

FreeRiderAttack = FreeRideAttack | StaleAttack | CopyAttack


def attack_seed(seed: int, rnd: int, site_index: int) -> np.random.Generator:
    """The attacker's own random stream for a round (independent of its training stream)."""
    return np.random.default_rng([seed, rnd, site_index, 0xBAD])


def poison_update(delta: Weights, attack: AttackConfig, rng: np.random.Generator) -> Weights:
    if isinstance(attack, SignFlipAttack):
        factor = -attack.scale
    elif isinstance(attack, ScaleAttack):
        factor = attack.scale
    elif isinstance(attack, BackdoorAttack):
        factor = attack.boost
    elif isinstance(attack, GaussianAttack):
        return [rng.normal(0.0, attack.std, size=d.shape).astype(d.dtype) for d in delta]
    else:
        return delta
    return [(factor * d).astype(d.dtype) for d in delta]


@dataclass
class RoundUploads:
    """The deltas the sites of this process sent in the current round (a copier reads them)."""

    round: int = 0
    deltas: dict[str, Weights] = field(default_factory=dict)

    def keep(self, rnd: int, site: str, delta: Weights) -> None:
        if rnd != self.round:
            self.round, self.deltas = rnd, {}
        self.deltas[site] = delta

    def sent(self, rnd: int, site: str) -> Weights | None:
        return self.deltas.get(site) if rnd == self.round else None


def free_rider_delta(
    delta: Weights,
    attack: FreeRiderAttack,
    state: dict[str, Weights],
    uploads: RoundUploads,
    rnd: int,
) -> Weights:
    """What a free-riding site sends in round ``rnd`` in place of its trained ``delta``."""
    if isinstance(attack, StaleAttack):
        if STALE_UPDATE_KEY not in state:
            state[STALE_UPDATE_KEY] = [d.copy() for d in delta]
        return [d.copy() for d in state[STALE_UPDATE_KEY]]
    if isinstance(attack, CopyAttack):
        copied = uploads.sent(rnd, attack.source)
        if copied is not None:
            return [d.copy() for d in copied]
        log.warning(
            "round %d: the copy free rider has no update of %r to copy; it returns the "
            "model it received",
            rnd,
            attack.source,
        )
    return zeros_like(delta)


def check_copy_source(attack: CopyAttack, site_names: list[str]) -> None:
    """The source must be an honest site that trains before every copier (site order)."""
    if attack.source not in site_names:
        raise ValueError(
            f"attack.source {attack.source!r} is not a site; the federation has {site_names}"
        )
    if attack.source in attack.sites:
        raise ValueError(f"attack.source {attack.source!r} cannot also be a copying site")
    late = [s for s in attack.sites if site_names.index(s) < site_names.index(attack.source)]
    if late:
        raise ValueError(
            f"copying site(s) {late} come before attack.source {attack.source!r} in the site "
            f"order {site_names}: sites train in that order, so there would be nothing to copy"
        )
