"""Loss and accuracy of a model on a dataset, batched and without gradients."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from medsilo.training.device import model_device
from medsilo.training.samples import Samples
from medsilo.training.task import correct_count, task_loss

#: Examples per forward pass when evaluating. Small enough that a hospital model's
#: activations fit (a ResNet-18 on 28x28 images in batches of 2,048 peaked at 2 GB of
#: memory; at 224x224 on a GPU it would not fit at all), large enough that small models
#: lose nothing to per-batch overhead.
EVAL_BATCH_SIZE = 256


@dataclass(frozen=True)
class EvalResult:
    """Mean loss and accuracy over ``n`` examples. Accuracy is the share of examples right
    (every label right for multilabel; the mean share of right pixels for segmentation) and
    NaN for regression, which has no notion of right."""

    loss: float
    accuracy: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


@torch.no_grad()
def evaluate(model: nn.Module, data: Samples, batch_size: int = EVAL_BATCH_SIZE) -> EvalResult:
    if len(data) == 0:
        return EvalResult(float("nan"), float("nan"), 0)
    model.eval()
    device = model_device(model)
    loss_sum = 0.0
    correct = 0.0
    for x, y in data.ordered_batches(batch_size):
        x, y = x.to(device), y.to(device)
        outputs = model(x)
        loss_sum += float(task_loss(outputs, y, data.task)) * int(y.shape[0])
        correct += correct_count(outputs, y, data.task)
    accuracy = float("nan") if data.task == "regression" else correct / len(data)
    return EvalResult(loss_sum / len(data), accuracy, len(data))
