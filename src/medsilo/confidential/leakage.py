"""Side-channel leakage risk of a transmitted update: how concentrated its magnitudes are.

For an update ``u`` with ``d`` coordinates, let ``a_j = |u_j|`` (smoothed to
``sqrt(u_j^2 + eps^2)`` where a gradient is needed), ``p_j = a_j / sum_k a_k`` and
``H(p) = -sum_j p_j log p_j``. The risk is

    R(u) = 1 - H(p) / log d        in [0, 1]

0 when every coordinate carries the same magnitude (nothing stands out to a memory-access or
timing observer), 1 when one coordinate carries everything. ``R`` is scale invariant, so
clipping, scaling or a projection onto a ball does not change it. The same
:func:`leakage_risk` is computed by the engine for every algorithm's transmitted updates.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from medsilo.types import Weights, flatten


def leakage_risk(weights: Weights) -> float:
    """``R`` of an update given as a list of arrays (exact magnitudes, ``0 log 0 = 0``)."""
    a = np.abs(flatten(weights).astype(np.float64))
    d = a.size
    total = float(a.sum())
    if d <= 1 or total == 0.0:
        return 0.0
    p = a[a > 0] / total
    entropy = float(-(p * np.log(p)).sum())
    return float(min(1.0, max(0.0, 1.0 - entropy / math.log(d))))


def smooth_leakage_risk(u: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Differentiable ``R`` of a flat tensor with ``a_j = sqrt(u_j^2 + eps^2)``."""
    d = u.numel()
    if d <= 1:
        return u.sum() * 0.0
    a = torch.sqrt(u * u + eps * eps)
    p = a / a.sum()
    entropy = -(p * torch.log(p)).sum()
    return 1.0 - entropy / math.log(d)


def sparsity(weights: Weights) -> float:
    """Share of exactly-zero coordinates."""
    flat = flatten(weights)
    return float(np.mean(flat == 0)) if flat.size else 0.0
