"""The few plain types every layer passes around.

Weights are a list of numpy arrays in the model's ``state_dict`` order (float entries only):
plain enough to serialise for any transport, and independent of torch so that aggregation
code stays pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]
Weights = list[Array]


@dataclass
class Update:
    """What one site sends back after local training.

    ``delta`` is ``local_weights - global_weights``; ``extras`` carries algorithm-specific
    payloads (e.g. SCAFFOLD's control-variate delta) that are aggregated by the same algorithm.
    """

    site: str
    delta: Weights
    num_examples: int
    num_steps: int
    metrics: dict[str, float] = field(default_factory=dict)
    extras: dict[str, Weights] = field(default_factory=dict)
    #: The compressed delta as sent (:mod:`medsilo.compression`); ``delta`` is empty until
    #: the coordinator decodes it. ``None`` when the delta travels uncompressed.
    encoded_delta: bytes | None = None


def zeros_like(weights: Weights) -> Weights:
    return [np.zeros_like(w) for w in weights]


def add(a: Weights, b: Weights, scale: float = 1.0) -> Weights:
    """``a + scale * b``, elementwise over the list."""
    return [x + scale * y for x, y in zip(a, b, strict=True)]


def subtract(a: Weights, b: Weights) -> Weights:
    return [x - y for x, y in zip(a, b, strict=True)]


def weighted_mean(items: list[Weights], weights: list[float]) -> Weights:
    """Mean of several weight lists, weighted (weights need not sum to one)."""
    if not items:
        raise ValueError("weighted_mean of an empty list")
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("weighted_mean needs a positive total weight")
    out = [np.zeros_like(w, dtype=np.float64) for w in items[0]]
    for item, wt in zip(items, weights, strict=True):
        for acc, arr in zip(out, item, strict=True):
            acc += (wt / total) * arr
    return [o.astype(ref.dtype) for o, ref in zip(out, items[0], strict=True)]


def nbytes(weights: Weights) -> int:
    """Raw size in bytes of the arrays (what an uncompressed fp32 transfer carries)."""
    return int(sum(w.nbytes for w in weights))


def flatten(weights: Weights) -> Array:
    return np.concatenate([w.ravel() for w in weights]) if weights else np.zeros(0, np.float32)


def global_norm(weights: Weights) -> float:
    return float(np.sqrt(sum(float(np.sum(np.square(w, dtype=np.float64))) for w in weights)))


def unflatten(flat: Array, like: Weights) -> Weights:
    """Split a flat vector into arrays shaped (and typed) like ``like``; inverse of flatten."""
    total = sum(int(w.size) for w in like)
    if flat.size != total:
        raise ValueError(f"flat vector of {flat.size} values, the layout holds {total}")
    out: Weights = []
    pos = 0
    for w in like:
        out.append(flat[pos : pos + w.size].reshape(w.shape).astype(w.dtype))
        pos += w.size
    return out
