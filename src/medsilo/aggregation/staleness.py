"""Staleness weights of asynchronous aggregation (docs/asynchronous.md).

``tau`` is how many server model versions were applied between the version a site trained
from and the one its update lands on.

* FedAsync (Xie et al. 2019, section 5.2) mixes ``x <- (1 - a_t) x + a_t x_site`` with
  ``a_t = alpha * s(tau)``:

  - ``constant``:   ``s(tau) = 1``
  - ``polynomial``: ``s(tau) = (1 + tau)^(-a)``
  - ``hinge``:      ``s(tau) = 1`` if ``tau <= b``, else ``1 / (a (tau - b) + 1)``

* FedBuff (Nguyen et al. 2022, algorithm 1) scales each buffered delta by
  ``1 / sqrt(1 + tau)`` before averaging the buffer.
"""

from __future__ import annotations

import math

from medsilo.asynchrony import StalenessConfig


def staleness_weight(tau: int, cfg: StalenessConfig) -> float:
    """FedAsync's ``s(tau)``; 1 for a fresh update (``tau = 0``) under every function."""
    if tau < 0:
        raise ValueError(f"staleness must be >= 0, got {tau}")
    if cfg.function == "constant":
        return 1.0
    if cfg.function == "polynomial":
        return float((1.0 + tau) ** (-cfg.a))
    if tau <= cfg.b:
        return 1.0
    return 1.0 / (cfg.a * (tau - cfg.b) + 1.0)


def fedbuff_weight(tau: int) -> float:
    """FedBuff's down-weighting of a stale delta: ``1 / sqrt(1 + tau)``."""
    if tau < 0:
        raise ValueError(f"staleness must be >= 0, got {tau}")
    return 1.0 / math.sqrt(1.0 + tau)
