"""In-memory dataset containers shared by loaders, partitioners and runtimes.

Everything is held as numpy arrays: the bundled datasets are small, and plain arrays keep the
loaders free of torch so that data checks run without a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

Task = Literal["binary", "multiclass"]


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
    train: ArrayData
    test: ArrayData


@dataclass(frozen=True)
class FederatedData:
    """Sites plus the pooled test set (the union of all sites' test sets or a held-out set)."""

    name: str
    sites: list[SiteData]
    test: ArrayData
    num_classes: int
    task: Task

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.sites[0].train.x.shape[1:])

    @property
    def site_names(self) -> list[str]:
        return [s.name for s in self.sites]

    def site(self, name: str) -> SiteData:
        for s in self.sites:
            if s.name == name:
                return s
        raise KeyError(f"no site named {name!r}; sites are {self.site_names}")

    def pooled_train(self) -> ArrayData:
        return ArrayData.concat([s.train for s in self.sites])

    def without(self, name: str) -> FederatedData:
        """The federation minus one site (leave-one-hospital-out)."""
        rest = [s for s in self.sites if s.name != name]
        if len(rest) == len(self.sites):
            raise KeyError(f"no site named {name!r}; sites are {self.site_names}")
        return FederatedData(
            self.name, rest, ArrayData.concat([s.test for s in rest]), self.num_classes, self.task
        )
