"""Model poisoning: what an attacking site sends instead of its honest update.

* ``sign_flip``: ``-scale * delta`` (pushes the global model uphill);
* ``scale``: ``scale * delta`` (a boosted update that dominates the mean);
* ``gaussian``: noise of standard deviation ``std`` in place of the update;
* ``backdoor``: the update trained on triggered data (:mod:`.data`), times ``boost``
  (model replacement when ``boost`` is about the number of sites);
* ``label_flip``: the honest update of a model trained on flipped labels (unchanged here).
"""

from __future__ import annotations

import numpy as np

from medsilo.config import AttackConfig, BackdoorAttack, GaussianAttack, ScaleAttack, SignFlipAttack
from medsilo.types import Weights


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
