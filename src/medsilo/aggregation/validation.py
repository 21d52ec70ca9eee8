"""Coordinator-side screening of received updates before they reach any aggregation.

An update is rejected, with a reason, when

* its delta has the wrong number of tensors, or a tensor that is not an array, has another
  dtype or shape than the global weights (the layout both ends agreed on);
* a tensor of its delta or of its extras (SCAFFOLD's ``delta_c``, which by convention has
  the weights' layout too) holds NaN or Inf, or a reported metric is not finite;
* it claims a non-positive number of examples;
* its l2 norm exceeds an absolute cap (``max_norm``), or exceeds ``max_norm_factor`` times
  the median norm of this round's structurally valid updates (an absurd norm; the median
  makes the reference robust to a minority of huge updates).

Nothing here modifies an update; rejected ones simply never reach the aggregation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medsilo.types import Update, Weights, global_norm


@dataclass(frozen=True)
class Rejection:
    site: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"site": self.site, "reason": self.reason}


def _tensor_problem(
    what: str, arrays: object, reference: Weights, names: Sequence[str]
) -> str | None:
    if not isinstance(arrays, list | tuple):
        return f"{what} is not a list of arrays"
    if len(arrays) != len(reference):
        return f"{what} has {len(arrays)} tensors, expected {len(reference)}"
    for i, (arr, ref) in enumerate(zip(arrays, reference, strict=True)):
        label = f"{what} tensor {i} ({names[i]!r})" if i < len(names) else f"{what} tensor {i}"
        if not isinstance(arr, np.ndarray):
            return f"{label} is a {type(arr).__name__}, not an array"
        if arr.dtype != ref.dtype:
            return f"{label} has dtype {arr.dtype}, expected {ref.dtype}"
        if arr.shape != ref.shape:
            return f"{label} has shape {arr.shape}, expected {ref.shape}"
        if np.isnan(arr).any():
            return f"{label} contains NaN"
        if np.isinf(arr).any():
            return f"{label} contains Inf"
    return None


def structural_problem(update: Update, reference: Weights, names: Sequence[str]) -> str | None:
    """Why ``update`` cannot be aggregated against ``reference``, or ``None`` if it can."""
    problem = _tensor_problem("delta", update.delta, reference, names)
    if problem is not None:
        return problem
    for key, extra in sorted(update.extras.items()):
        problem = _tensor_problem(f"extra {key!r}", extra, reference, names)
        if problem is not None:
            return problem
    if update.num_examples <= 0:
        return f"num_examples must be positive, got {update.num_examples}"
    for key, value in sorted(update.metrics.items()):
        if not math.isfinite(value):
            return f"metric {key!r} is not finite ({value})"
    return None


def validate_updates(
    updates: Sequence[Update],
    reference: Weights,
    names: Sequence[str],
    max_norm: float | None = None,
    max_norm_factor: float | None = None,
) -> tuple[list[Update], list[Rejection]]:
    """Split ``updates`` into the accepted ones (in order) and the rejections with reasons."""
    rejected: list[Rejection] = []
    sound: list[tuple[Update, float]] = []
    for u in updates:
        problem = structural_problem(u, reference, names)
        if problem is None:
            sound.append((u, global_norm(u.delta)))
        else:
            rejected.append(Rejection(u.site, problem))
    median = float(np.median([n for _, n in sound])) if sound else 0.0
    accepted: list[Update] = []
    for u, norm in sound:
        if max_norm is not None and norm > max_norm:
            rejected.append(Rejection(u.site, f"l2 norm {norm:.4g} exceeds the cap {max_norm:g}"))
        elif max_norm_factor is not None and median > 0 and norm > max_norm_factor * median:
            rejected.append(
                Rejection(
                    u.site,
                    f"l2 norm {norm:.4g} is more than {max_norm_factor:g}x the round's median "
                    f"norm {median:.4g}",
                )
            )
        else:
            accepted.append(u)
    order = {u.site: i for i, u in enumerate(updates)}
    rejected.sort(key=lambda r: order.get(r.site, len(order)))
    return accepted, rejected
