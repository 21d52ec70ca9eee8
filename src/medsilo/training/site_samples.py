"""The samples a split becomes: tensors for arrays, a loader for data streamed from disk."""

from __future__ import annotations

from medsilo.data.base import Split, StreamedSplit, Task
from medsilo.training.samples import Samples
from medsilo.training.streamed import StreamedData
from medsilo.training.tensors import TensorData


def samples_of(split: Split, task: Task, workers: int = 0) -> Samples:
    """``split`` ready for the training core; ``workers`` loader processes read a streamed
    split ahead (in-memory data needs none)."""
    if isinstance(split, StreamedSplit):
        return StreamedData(split, task, workers)
    return TensorData.of(split, task)
