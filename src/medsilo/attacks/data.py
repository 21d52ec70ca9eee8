"""Data poisoning: label flipping and backdoor triggers on an attacking site's training set.

The poisoned copy is made once per run; the honest tensors (shared with other runs) are
never modified. Backdoor success is measured on the pooled test set: among the rows whose
true label is not the target, the share the model puts in the target class once the
trigger is stamped on them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from medsilo.attacks.updates import check_copy_source
from medsilo.config import AttackConfig, BackdoorAttack, CopyAttack, LabelFlipAttack
from medsilo.models.weights import set_weights
from medsilo.training.evaluate import EVAL_BATCH_SIZE
from medsilo.training.samples import Samples
from medsilo.training.task import predictions
from medsilo.training.tensors import TensorData, in_memory
from medsilo.types import Weights


def flip_labels(data: TensorData, num_classes: int) -> TensorData:
    """``y -> C - 1 - y`` (for binary tasks ``y -> 1 - y``)."""
    return TensorData(data.x, (num_classes - 1) - data.y, data.task)


def stamp_trigger(x: torch.Tensor, size: int, value: float) -> torch.Tensor:
    """A copy of ``x`` with the last ``size`` features of every row set to ``value``."""
    flat = x.reshape(x.shape[0], -1).clone()
    flat[:, -min(size, flat.shape[1]) :] = value
    return flat.reshape(x.shape)


def plant_backdoor(data: TensorData, attack: BackdoorAttack, seed: int) -> TensorData:
    """Trigger and relabel a seeded random ``fraction`` of the rows."""
    n = len(data)
    count = max(1, round(attack.fraction * n)) if n else 0
    rows = torch.from_numpy(np.random.default_rng([seed, 0xB4CD]).permutation(n)[:count])
    x, y = data.x.clone(), data.y.clone()
    x[rows] = stamp_trigger(x[rows], attack.trigger_size, attack.trigger_value)
    y[rows] = attack.target
    return TensorData(x, y, data.task)


def poisoned_training_data(
    attack: AttackConfig | None, site: str, data: Samples, num_classes: int, seed: int
) -> Samples:
    """The training set ``site`` actually uses (the honest one unless it poisons data)."""
    if attack is None or site not in attack.sites:
        return data
    if isinstance(attack, LabelFlipAttack):
        return flip_labels(in_memory(data, "a label-flipping attack"), num_classes)
    if isinstance(attack, BackdoorAttack):
        return plant_backdoor(in_memory(data, "a backdoor attack"), attack, seed)
    return data


def check_attack(attack: AttackConfig | None, site_names: list[str], num_classes: int) -> None:
    if attack is None:
        return
    unknown = sorted(set(attack.sites) - set(site_names))
    if unknown:
        raise ValueError(
            f"attack.sites names unknown site(s) {unknown}; the federation has {site_names}"
        )
    if isinstance(attack, CopyAttack):
        check_copy_source(attack, site_names)
    if isinstance(attack, BackdoorAttack) and attack.target >= num_classes:
        raise ValueError(
            f"attack.target {attack.target} is not a class of this task ({num_classes} classes)"
        )


@torch.no_grad()
def backdoor_success(
    model: nn.Module,
    weights: Weights,
    test_samples: Samples,
    attack: BackdoorAttack,
    batch_size: int = EVAL_BATCH_SIZE,
) -> dict[str, float | int]:
    """``{"success": share of triggered non-target rows classified as target, "n": rows}``."""
    test = in_memory(test_samples, "measuring a backdoor")
    keep = test.y != attack.target
    x = test.x[keep]
    n = int(x.shape[0])
    if n == 0:
        return {"success": float("nan"), "n": 0}
    set_weights(model, weights)
    model.eval()
    hits = 0
    for start in range(0, n, batch_size):
        batch = stamp_trigger(
            x[start : start + batch_size], attack.trigger_size, attack.trigger_value
        )
        hits += int((predictions(model(batch), test.task) == attack.target).sum())
    return {"success": hits / n, "n": n}
