"""A site's examples as the training core sees them: batches, in shuffled or fixed order.

Two kinds exist: :class:`medsilo.training.tensors.TensorData` (the bundled datasets, held as
tensors, so a batch is one indexing operation) and :class:`medsilo.training.streamed.StreamedData`
(images or volumes read from disk through a ``DataLoader`` with workers, never held whole).
The local loop, evaluation and DP-SGD only use this interface, so every algorithm, privacy
and robustness feature runs on both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from numpy.typing import NDArray

from medsilo.data.base import Task

Batch = tuple[torch.Tensor, torch.Tensor]


@runtime_checkable
class Reseedable(Protocol):
    """An item source with random augmentations: ``reseed`` sets their stream, so that a
    run's augmentations follow from its seed (called in each loader worker, or once in the
    main process when the loader has no workers)."""

    def reseed(self, seed: int) -> None: ...


class BatchSampler:
    """Epoch-wise shuffled mini-batches (like a shuffling DataLoader), from a seeded generator."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator) -> None:
        if n == 0:
            raise ValueError("cannot train on a site with no examples")
        self.n = n
        self.batch_size = min(batch_size, n)
        self.generator = generator
        self._order = torch.randperm(n, generator=generator)
        self._pos = 0

    def next(self) -> torch.Tensor:
        if self._pos >= self.n:
            self._order = torch.randperm(self.n, generator=self.generator)
            self._pos = 0
        batch = self._order[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return batch


class Samples(ABC):
    """A site's examples for one task (see the module docstring)."""

    task: Task

    @abstractmethod
    def __len__(self) -> int: ...

    @property
    def binary(self) -> bool:
        return self.task == "binary"

    @abstractmethod
    def fetch(self, indices: torch.Tensor) -> Batch:
        """Inputs and targets (in the dtype the task's loss expects) of rows ``indices``."""

    def training_batches(self, sampler: BatchSampler, steps: int) -> Iterator[Batch]:
        """``steps`` batches in ``sampler``'s order (a streamed source reads them ahead)."""
        for _ in range(steps):
            yield self.fetch(sampler.next())

    @abstractmethod
    def ordered_batches(self, batch_size: int) -> Iterator[Batch]:
        """Every example once, in order, for evaluation."""

    @abstractmethod
    def subset(self, indices: NDArray[np.int64]) -> Samples:
        """Rows ``indices`` (in that order) as the same kind of samples."""
