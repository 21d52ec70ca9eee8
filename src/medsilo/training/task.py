"""What a model is trained to predict, and the loss and predictions that follow from it.

One name per task, kept in :data:`medsilo.data.base.Task`; everything task-specific in the
training core (the loss, the label dtype, how outputs become predictions) is decided here,
so the local loop, evaluation, DP-SGD and the attacks never branch on a task themselves.

* ``binary``: one logit per example, BCE (as FLamby's Fed-Heart-Disease baseline).
* ``multiclass``: one logit per class, cross-entropy.
* ``multilabel``: one logit per label, labels a 0/1 matrix, BCE per label.
* ``regression``: one output per target, mean squared error.
* ``segmentation``: one channel per class (background included), the mask an integer label
  map shaped ``(1, *spatial)`` per image; MONAI's Dice + cross-entropy loss.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import torch
from torch import nn

from medsilo.data.base import Task

#: Tasks whose labels are one class per example (what the clinical metrics score).
CLASS_TASKS: frozenset[Task] = frozenset({"binary", "multiclass"})


def output_size(task: Task, num_classes: int) -> int:
    """Outputs (logits, channels or targets) a model needs for ``task``: one logit for a
    binary task, otherwise ``num_classes`` (classes, labels, targets or mask channels)."""
    return 1 if task == "binary" else num_classes


def as_targets(y: torch.Tensor, task: Task) -> torch.Tensor:
    """Labels in the dtype ``task``'s loss expects (float for BCE and MSE, long otherwise)."""
    if task in ("binary", "multilabel", "regression"):
        return y.float()
    return y.long()


@cache
def _dice_ce() -> nn.Module:
    from monai.losses.dice import DiceCELoss  # MONAI loads only for segmentation

    loss: nn.Module = DiceCELoss(to_onehot_y=True, softmax=True)
    return loss


def task_loss(outputs: torch.Tensor, y: torch.Tensor, task: Task) -> torch.Tensor:
    """The mean training loss of ``outputs`` against labels ``y`` (already :func:`as_targets`)."""
    if task == "binary":
        return nn.functional.binary_cross_entropy_with_logits(outputs.squeeze(1), y)
    if task == "multiclass":
        return nn.functional.cross_entropy(outputs, y)
    if task == "multilabel":
        return nn.functional.binary_cross_entropy_with_logits(outputs, y)
    if task == "regression":
        return nn.functional.mse_loss(outputs.reshape(y.shape), y)
    loss: Any = _dice_ce()(outputs, y)
    return loss  # type: ignore[no-any-return]


def predictions(outputs: torch.Tensor, task: Task) -> torch.Tensor:
    """Hard predictions: the class (binary, multiclass), 0/1 per label (multilabel), the
    value (regression), the label map ``(N, 1, *spatial)`` (segmentation)."""
    if task == "binary":
        return (outputs.squeeze(1) > 0).long()
    if task == "multiclass":
        return outputs.argmax(dim=1)
    if task == "multilabel":
        return (outputs > 0).long()
    if task == "regression":
        return outputs
    return outputs.argmax(dim=1, keepdim=True)


def correct_count(outputs: torch.Tensor, y: torch.Tensor, task: Task) -> float:
    """Examples counted as right: exact class (binary, multiclass), every label right
    (multilabel), the share of right pixels (segmentation); regression has none (0)."""
    if task == "regression":
        return 0.0
    hits = predictions(outputs, task) == y.long()
    if task == "binary" or task == "multiclass":
        return float(hits.sum())
    if task == "multilabel":
        return float(hits.all(dim=1).sum())
    return float(hits.flatten(1).float().mean(dim=1).sum())
