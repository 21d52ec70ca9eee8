"""Loss and accuracy of a model on a dataset, batched and without gradients."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from medsilo.training.tensors import TensorData, predictions, task_loss


@dataclass(frozen=True)
class EvalResult:
    loss: float
    accuracy: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


@torch.no_grad()
def evaluate(model: nn.Module, data: TensorData, batch_size: int = 2048) -> EvalResult:
    if len(data) == 0:
        return EvalResult(float("nan"), float("nan"), 0)
    model.eval()
    loss_sum = 0.0
    correct = 0
    for start in range(0, len(data), batch_size):
        x = data.x[start : start + batch_size]
        y = data.y[start : start + batch_size]
        logits = model(x)
        loss_sum += float(task_loss(logits, y, data.binary)) * int(y.shape[0])
        correct += int((predictions(logits, data.binary) == y.long()).sum())
    return EvalResult(loss_sum / len(data), correct / len(data), len(data))
