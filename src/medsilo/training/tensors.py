"""Data converted once to torch tensors, so the hot training loop only indexes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from medsilo.data.base import ArrayData, Task, needs_memory
from medsilo.training.samples import Batch, Samples
from medsilo.training.task import as_targets


@dataclass(frozen=True)
class TensorData(Samples):
    """In-memory examples: ``y`` is already in the dtype the task's loss expects."""

    x: torch.Tensor
    y: torch.Tensor
    task: Task

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @staticmethod
    def of(data: ArrayData, task: Task) -> TensorData:
        # Loaders hand out read-only cached arrays; copy only those, so torch may not alias them.
        x = torch.as_tensor(np.require(data.x, np.float32, ["W"]))
        y = torch.as_tensor(np.require(data.y, requirements=["W"]))
        return TensorData(x, as_targets(y, task), task)

    def fetch(self, indices: torch.Tensor) -> Batch:
        return self.x[indices], self.y[indices]

    def ordered_batches(self, batch_size: int) -> Iterator[Batch]:
        # An empty set still yields one (empty) batch, so a model's output width shows.
        for start in range(0, max(len(self), 1), batch_size):
            yield self.x[start : start + batch_size], self.y[start : start + batch_size]

    def subset(self, indices: NDArray[np.int64]) -> TensorData:
        keep = torch.as_tensor(indices)
        return TensorData(self.x[keep], self.y[keep], self.task)


def in_memory(samples: Samples, purpose: str) -> TensorData:
    """``samples`` as tensors; streamed samples are refused, naming what needed every row
    at once (an audit, a data-poisoning attack)."""
    if not isinstance(samples, TensorData):
        raise ValueError(needs_memory(purpose))
    return samples
