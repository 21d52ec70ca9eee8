"""Federated feature standardisation: global mean and std without pooling any rows.

Tabular clinical features live on wildly different scales (cholesterol in the hundreds,
binary flags in {0, 1}); plain SGD on raw values barely trains. Each site shares only its
row count and the per-feature sum and sum of squares of its *training* rows; the coordinator
adds them up into the federation-wide mean and standard deviation, and every site applies
the same affine map to its train and test data. Only these aggregate moments leave a site.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import numpy as np
from numpy.typing import NDArray

from medsilo.data.base import ArrayData, FederatedData, SiteData, Split, in_memory


@dataclass(frozen=True)
class Moments:
    count: int
    total: NDArray[np.float64]
    total_sq: NDArray[np.float64]

    @staticmethod
    def of(x: NDArray[np.float32]) -> Moments:
        flat = x.reshape(len(x), int(np.prod(x.shape[1:]))).astype(np.float64)
        return Moments(len(x), flat.sum(axis=0), (flat**2).sum(axis=0))


def combine(moments: list[Moments]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Federation-wide mean and std; constant features get std 1 (left centred, unscaled)."""
    n = sum(m.count for m in moments)
    if n == 0:
        raise ValueError("cannot standardise a federation with no training rows")
    mean = sum((m.total for m in moments), np.zeros_like(moments[0].total)) / n
    sq = sum((m.total_sq for m in moments), np.zeros_like(moments[0].total_sq)) / n
    std = np.sqrt(np.maximum(sq - mean**2, 0.0))
    std[std < 1e-12] = 1.0
    return mean, std


@overload
def apply_standardization(
    data: ArrayData, mean: NDArray[np.float64], std: NDArray[np.float64]
) -> ArrayData: ...
@overload
def apply_standardization(
    data: SiteData, mean: NDArray[np.float64], std: NDArray[np.float64]
) -> SiteData: ...
@overload
def apply_standardization(
    data: FederatedData, mean: NDArray[np.float64], std: NDArray[np.float64]
) -> FederatedData: ...
def apply_standardization(
    data: ArrayData | SiteData | FederatedData,
    mean: NDArray[np.float64],
    std: NDArray[np.float64],
) -> ArrayData | SiteData | FederatedData:
    """``(x - mean) / std`` per feature (x flattened per row), as read-only float32.

    Takes an array set, one site (train and test) or a whole federation (every site and the
    pooled test set) and returns the same kind. ``mean``/``std`` come from :func:`combine`: a
    deployed site applies the coordinator's result to its own data and gets exactly the
    arrays the in-process engine's :func:`standardize_federation` gives it.
    """
    if isinstance(data, FederatedData):
        sites = [apply_standardization(s, mean, std) for s in data.sites]
        test = _affine(data.test, mean, std)
        return FederatedData(data.name, sites, test, data.num_classes, data.task)
    if isinstance(data, SiteData):
        return SiteData(data.name, _affine(data.train, mean, std), _affine(data.test, mean, std))
    return _affine(data, mean, std)


def _affine(split: Split, mean: NDArray[np.float64], std: NDArray[np.float64]) -> ArrayData:
    data = in_memory(split, "standardisation")
    shape = data.x.shape
    x = ((data.x.reshape(len(data.x), -1) - mean) / std).astype(np.float32).reshape(shape)
    x.flags.writeable = False
    return ArrayData(x, data.y, data.groups)


def standardize_federation(fed: FederatedData) -> FederatedData:
    """Every site and the pooled test set under the mean/std of all sites' training rows."""
    mean, std = combine([Moments.of(in_memory(s.train, "standardisation").x) for s in fed.sites])
    return apply_standardization(fed, mean, std)
