"""Data converted once to torch tensors, so the hot training loop only indexes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from medsilo.data.base import ArrayData


@dataclass(frozen=True)
class TensorData:
    x: torch.Tensor
    y: torch.Tensor
    binary: bool

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @staticmethod
    def of(data: ArrayData, binary: bool) -> TensorData:
        # Loaders hand out read-only cached arrays; copy only those, so torch may not alias them.
        x = torch.as_tensor(np.require(data.x, np.float32, ["W"]))
        y = torch.as_tensor(np.require(data.y, requirements=["W"]))
        return TensorData(x, y.float() if binary else y.long(), binary)


def task_loss(logits: torch.Tensor, y: torch.Tensor, binary: bool) -> torch.Tensor:
    """BCE on one logit for binary tasks (as FLamby), cross-entropy otherwise."""
    if binary:
        return torch.nn.functional.binary_cross_entropy_with_logits(logits.squeeze(1), y)
    return torch.nn.functional.cross_entropy(logits, y)


def predictions(logits: torch.Tensor, binary: bool) -> torch.Tensor:
    if binary:
        return (logits.squeeze(1) > 0).long()
    return logits.argmax(dim=1)
