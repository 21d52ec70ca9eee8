"""Examples streamed from disk through a ``DataLoader``: a site never holds them all.

Training batches follow the same seeded :class:`~medsilo.training.samples.BatchSampler` as
in-memory data (so a round's batch order depends only on the run seed, the round and the
site), and are read ahead by ``workers`` loader processes. Random augmentations are seeded
too: each worker's item source is :meth:`~medsilo.training.samples.Reseedable.reseed`-ed from
a seed drawn from the site's generator, so a run with a given seed and number of workers
repeats exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import DataLoader, Dataset

from medsilo.data.base import ItemSource, StreamedSplit, Task, unaugmented
from medsilo.training.samples import Batch, BatchSampler, Reseedable, Samples
from medsilo.training.task import as_targets


class _Items(Dataset[tuple[Any, Any]]):
    """An item source typed as the torch ``Dataset`` a ``DataLoader`` takes; the worker hook
    finds the source here to reseed its augmentations."""

    def __init__(self, source: ItemSource) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        return self.source[index]


def _reseed_worker(worker_id: int) -> None:
    info = torch.utils.data.get_worker_info()
    assert info is not None
    source = info.dataset.source  # type: ignore[attr-defined]
    if isinstance(source, Reseedable):
        source.reseed(int(torch.initial_seed()) % 2**63)


class StreamedData(Samples):
    """A :class:`~medsilo.data.base.StreamedSplit` read batch by batch."""

    def __init__(self, split: StreamedSplit, task: Task, workers: int = 0) -> None:
        if workers < 0:
            raise ValueError(f"loader workers must be >= 0, got {workers}")
        self.split = split
        self.task = task
        self.workers = workers

    def __len__(self) -> int:
        return len(self.split)

    def _collate(self, items: list[tuple[Any, Any]]) -> Batch:
        x = torch.stack([torch.as_tensor(i[0], dtype=torch.float32) for i in items])
        y = torch.stack([torch.as_tensor(np.asarray(i[1])) for i in items])
        return x, as_targets(y, self.task)

    def fetch(self, indices: torch.Tensor) -> Batch:
        return self._collate([self.split.items[int(i)] for i in indices])

    def _loader(
        self, batches: list[list[int]], seed: int, items: ItemSource | None = None
    ) -> DataLoader[tuple[Any, Any]]:
        items = self.split.items if items is None else items
        if self.workers == 0 and isinstance(items, Reseedable):
            items.reseed(seed)
        return DataLoader(
            _Items(items),
            batch_sampler=batches,
            num_workers=self.workers,
            collate_fn=self._collate,
            worker_init_fn=_reseed_worker if self.workers else None,
            generator=torch.Generator().manual_seed(seed),
            persistent_workers=False,
        )

    def training_batches(self, sampler: BatchSampler, steps: int) -> Iterator[Batch]:
        batches = [sampler.next().tolist() for _ in range(steps)]
        seed = int(torch.randint(2**62, (1,), generator=sampler.generator))
        yield from self._loader(batches, seed)

    def ordered_batches(self, batch_size: int) -> Iterator[Batch]:
        """Every item once, in order, without augmentations (evaluation)."""
        n = len(self)
        batches = [list(range(s, min(s + batch_size, n))) for s in range(0, n, batch_size)]
        yield from self._loader(batches, 0, unaugmented(self.split.items))

    def subset(self, indices: NDArray[np.int64]) -> StreamedData:
        return StreamedData(self.split.subset(indices), self.task, self.workers)
