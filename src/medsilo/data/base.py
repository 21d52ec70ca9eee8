"""Dataset containers shared by loaders, partitioners and runtimes.

A split is either held as numpy arrays (:class:`ArrayData`: the bundled datasets are small,
and plain arrays keep the loaders free of torch so that data checks run without a model) or
read from disk item by item (:class:`StreamedSplit`: image folders, a user's torch Dataset).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

#: What the model predicts: :mod:`medsilo.training.task` gives each its loss and predictions.
Task = Literal["binary", "multiclass", "multilabel", "regression", "segmentation"]


class DataFormatError(ValueError):
    """A bundled or user-supplied data file is missing or malformed.

    The message always names the file and, where it applies, the row and column.
    """


@dataclass(frozen=True)
class ArrayData:
    """Features ``x`` (float32, N x ...) and integer labels ``y`` (int64, N).

    ``groups`` holds subgroup columns for reporting metrics per subgroup (e.g. ``sex`` and
    ``age_band`` of heart disease, :mod:`medsilo.metrics.subgroups`): one text value per row,
    kept beside the features rather than taken out of them, and carried through subsets,
    concatenation and standardisation.
    """

    x: NDArray[np.float32]
    y: NDArray[np.int64]
    groups: Mapping[str, NDArray[np.str_]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} rows but y has {len(self.y)}")
        for name, column in self.groups.items():
            if len(column) != len(self.y):
                raise ValueError(
                    f"subgroup column {name!r} has {len(column)} rows, not {len(self.y)}"
                )

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, indices: NDArray[np.int64]) -> ArrayData:
        groups = {k: v[indices] for k, v in self.groups.items()}
        return ArrayData(self.x[indices], self.y[indices], groups)

    @staticmethod
    def concat(parts: list[ArrayData]) -> ArrayData:
        """Rows of ``parts`` in order; a subgroup column is kept if every part has it."""
        shared = set.intersection(*(set(p.groups) for p in parts)) if parts else set()
        groups = {k: np.concatenate([p.groups[k] for p in parts]) for k in sorted(shared)}
        return ArrayData(
            np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]), groups
        )


class ItemSource(Protocol):
    """Examples read one at a time (a ``torch.utils.data.Dataset`` is one): item ``i`` is
    ``(x, y)``, a float tensor and its label (an int, a label vector, a value, a mask)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[Any, Any]: ...


class IndexedItems:
    """``source``'s items at ``indices``, in that order (a subset or a concatenation)."""

    def __init__(self, sources: list[ItemSource], order: list[tuple[int, int]]) -> None:
        self.sources = sources
        self.order = order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        source, item = self.order[index]
        return self.sources[source][item]

    def reseed(self, seed: int) -> None:
        """Pass a loader worker's augmentation seed on to the sources that augment."""
        for source in self.sources:
            reseed = getattr(source, "reseed", None)
            if callable(reseed):
                reseed(seed)

    def without_augmentation(self) -> IndexedItems:
        """The same order over the sources' unaugmented items (where they augment)."""
        return IndexedItems([unaugmented(s) for s in self.sources], self.order)


def unaugmented(source: ItemSource) -> ItemSource:
    """``source`` without its random augmentations, when it has a way to say so
    (``without_augmentation()``); evaluation reads items as they are on disk."""
    plain = getattr(source, "without_augmentation", None)
    return plain() if callable(plain) else source


@dataclass(frozen=True)
class StreamedSplit:
    """A split read from disk item by item (images, volumes), never held whole in memory.

    ``labels`` are the class labels when they are known without reading the images (a labels
    CSV): partition reports and the clinical metrics' label counts use them. ``None`` for
    tasks whose labels are masks or values.
    """

    items: ItemSource
    labels: NDArray[np.int64] | None = None
    groups: Mapping[str, NDArray[np.str_]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.labels is not None and len(self.labels) != len(self.items):
            raise ValueError(f"{len(self.labels)} labels for {len(self.items)} items")

    def __len__(self) -> int:
        return len(self.items)

    @property
    def item_shape(self) -> tuple[int, ...]:
        """The shape of one input, read from the first item (its file is opened once)."""
        if len(self.items) == 0:
            raise ValueError("an empty split has no input shape")
        return tuple(int(s) for s in self.items[0][0].shape)

    def subset(self, indices: NDArray[np.int64]) -> StreamedSplit:
        order = [(0, int(i)) for i in indices]
        return StreamedSplit(
            IndexedItems([self.items], order),
            None if self.labels is None else self.labels[indices],
            {k: v[indices] for k, v in self.groups.items()},
        )

    @staticmethod
    def concat(parts: list[StreamedSplit]) -> StreamedSplit:
        """Items of ``parts`` in order; labels and subgroup columns kept if every part has them."""
        order = [(p, i) for p, part in enumerate(parts) for i in range(len(part))]
        labels = (
            np.concatenate([p.labels for p in parts if p.labels is not None])
            if all(p.labels is not None for p in parts) and parts
            else None
        )
        shared = set.intersection(*(set(p.groups) for p in parts)) if parts else set()
        groups = {k: np.concatenate([p.groups[k] for p in parts]) for k in sorted(shared)}
        return StreamedSplit(IndexedItems([p.items for p in parts], order), labels, groups)


#: A site's train or test split: arrays in memory, or items streamed from disk.
Split = ArrayData | StreamedSplit


def split_shape(split: Split) -> tuple[int, ...]:
    """The shape of one input of ``split``."""
    if isinstance(split, StreamedSplit):
        return split.item_shape
    return tuple(int(s) for s in split.x.shape[1:])


def in_memory(split: Split, purpose: str) -> ArrayData:
    """``split`` as arrays; a streamed split is refused, naming what needed the arrays (a
    feature that reads every row at once, such as standardisation or a data-poisoning
    attack, is not available for data streamed from disk)."""
    if isinstance(split, StreamedSplit):
        raise DataFormatError(needs_memory(purpose))
    return split


def needs_memory(purpose: str) -> str:
    """Why ``purpose`` refuses data streamed from disk (one wording for arrays and tensors)."""
    return (
        f"{purpose} needs the data in memory; it is not available for data streamed from "
        "disk (image folders, a torch Dataset)"
    )


def concat_splits(parts: list[Split]) -> Split:
    """The rows of ``parts`` in order: arrays if every part is arrays, else streamed."""
    if all(isinstance(p, ArrayData) for p in parts):
        return ArrayData.concat([p for p in parts if isinstance(p, ArrayData)])
    if all(isinstance(p, StreamedSplit) for p in parts):
        return StreamedSplit.concat([p for p in parts if isinstance(p, StreamedSplit)])
    raise ValueError("cannot concatenate in-memory and streamed splits")


@dataclass(frozen=True)
class CentralData:
    """A dataset before it is split across sites."""

    name: str
    train: ArrayData
    test: ArrayData
    num_classes: int
    task: Task

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.train.x.shape[1:])


@dataclass(frozen=True)
class SiteData:
    """One hospital's private data: its own train and test sets."""

    name: str
    train: Split
    test: Split


@dataclass(frozen=True)
class FederatedData:
    """Sites plus the pooled test set (the union of all sites' test sets or a held-out set)."""

    name: str
    sites: list[SiteData]
    test: Split
    num_classes: int
    task: Task

    @property
    def input_shape(self) -> tuple[int, ...]:
        return split_shape(self.sites[0].train)

    @property
    def streamed(self) -> bool:
        """Whether any site reads its data from disk item by item."""
        return any(isinstance(s.train, StreamedSplit) for s in self.sites)

    @property
    def site_names(self) -> list[str]:
        return [s.name for s in self.sites]

    def site(self, name: str) -> SiteData:
        for s in self.sites:
            if s.name == name:
                return s
        raise KeyError(f"no site named {name!r}; sites are {self.site_names}")

    def pooled_train(self) -> Split:
        return concat_splits([s.train for s in self.sites])

    def without(self, name: str) -> FederatedData:
        """The federation minus one site (leave-one-hospital-out)."""
        rest = [s for s in self.sites if s.name != name]
        if len(rest) == len(self.sites):
            raise KeyError(f"no site named {name!r}; sites are {self.site_names}")
        return FederatedData(
            self.name, rest, concat_splits([s.test for s in rest]), self.num_classes, self.task
        )
