"""Data streamed through a DataLoader trains exactly like the same data held in memory."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from medsilo.data.base import ArrayData, StreamedSplit
from medsilo.models.weights import get_weights
from medsilo.training.evaluate import evaluate
from medsilo.training.local import LocalTraining, train_local
from medsilo.training.samples import BatchSampler
from medsilo.training.streamed import StreamedData
from medsilo.training.tensors import TensorData


class Rows:
    """Item source over arrays, counting reads (a site must not read everything up front)."""

    def __init__(self, data: ArrayData) -> None:
        self.data = data
        self.reads = 0

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.int64]:
        self.reads += 1
        return self.data.x[index], self.data.y[index]


class NoisyRows(Rows):
    """Rows plus seeded noise: an augmentation whose stream ``reseed`` sets."""

    def __init__(self, data: ArrayData) -> None:
        super().__init__(data)
        self.generator = torch.Generator().manual_seed(0)

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.int64]:
        x, y = super().__getitem__(index)
        noise = torch.randn(x.shape, generator=self.generator).numpy()
        return (x + noise).astype(np.float32), y


def arrays(n: int = 40, seed: int = 0) -> ArrayData:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    return ArrayData(x, (x[:, 0] > 0).astype(np.int64))


def trained(data: TensorData | StreamedData) -> list[np.ndarray]:
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1))
    torch.manual_seed(0)
    for p in model.parameters():
        nn.init.normal_(p, std=0.3)
    cfg = LocalTraining(batch_size=8, lr=0.1, local_steps=12)
    train_local(model, data, cfg, torch.Generator().manual_seed(3))
    return get_weights(model)


def test_streamed_training_equals_in_memory_training() -> None:
    rows = arrays()
    streamed = trained(StreamedData(StreamedSplit(Rows(rows)), "binary"))
    in_memory = trained(TensorData.of(rows, "binary"))
    for a, b in zip(streamed, in_memory, strict=True):
        np.testing.assert_array_equal(a, b)


def test_streamed_reads_only_the_batches_it_trains_on() -> None:
    source = Rows(arrays(n=400))
    data = StreamedData(StreamedSplit(source), "binary")
    batches = list(data.training_batches(BatchSampler(len(data), 8, torch.Generator()), 3))
    assert [len(y) for _, y in batches] == [8, 8, 8]
    assert source.reads == 24


def test_evaluation_streams_every_row_once_in_order() -> None:
    rows = arrays(n=50)
    model = nn.Linear(6, 1)
    streamed = evaluate(model, StreamedData(StreamedSplit(Rows(rows)), "binary"), batch_size=7)
    in_memory = evaluate(model, TensorData.of(rows, "binary"), batch_size=7)
    assert streamed.n == in_memory.n == 50
    assert streamed.accuracy == in_memory.accuracy
    assert abs(streamed.loss - in_memory.loss) < 1e-6


def test_augmentations_follow_the_seed_with_loader_workers() -> None:
    def batches(seed: int) -> list[torch.Tensor]:
        data = StreamedData(StreamedSplit(NoisyRows(arrays())), "binary", workers=2)
        sampler = BatchSampler(len(data), 8, torch.Generator().manual_seed(seed))
        return [x for x, _ in data.training_batches(sampler, 4)]

    first, again, other = batches(1), batches(1), batches(2)
    for a, b in zip(first, again, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(not torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_subset_and_concat_keep_labels_and_order() -> None:
    rows = arrays(n=10)
    split = StreamedSplit(Rows(rows), rows.y)
    both = StreamedSplit.concat([split.subset(np.array([3, 1])), split.subset(np.array([0]))])
    assert both.labels is not None and both.labels.tolist() == rows.y[[3, 1, 0]].tolist()
    np.testing.assert_array_equal(both.items[1][0], rows.x[1])
    assert both.item_shape == (6,)


class AugmentedRows(NoisyRows):
    def without_augmentation(self) -> Rows:
        return Rows(self.data)


def test_evaluation_reads_items_without_their_augmentations() -> None:
    rows = arrays(n=30)
    model = nn.Linear(6, 1)
    augmented = StreamedData(StreamedSplit(AugmentedRows(rows)), "binary")
    subset = augmented.subset(np.arange(30, dtype=np.int64))  # through IndexedItems too
    clean = evaluate(model, TensorData.of(rows, "binary"))
    for data in (augmented, subset):
        result = evaluate(model, data)
        assert abs(result.loss - clean.loss) < 1e-6 and result.accuracy == clean.accuracy
