"""A site's own train/test split for site-held data (DICOM folders, EHR CSVs).

Stratified per class and seeded by ``(split_seed, site index)``, so every run of a federation
evaluates on the same held-out rows whatever the run seed (as FLamby's fixed per-centre
splits do). A class with at least two rows puts ``round(test_fraction * n_c)`` of them, but
at least one and never all, into the test set; a class with a single row stays in training.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from medsilo.data._util import frozen
from medsilo.data.base import ArrayData


def stratified_split(
    y: NDArray[np.int64], test_fraction: float, seed: int, site_index: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    rng = np.random.default_rng([seed, site_index])
    test: list[int] = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        if len(idx) < 2:
            continue
        k = min(max(1, round(test_fraction * len(idx))), len(idx) - 1)
        test.extend(idx[:k].tolist())
    test_idx = np.sort(np.asarray(test, dtype=np.int64))
    train_idx = np.setdiff1d(np.arange(len(y), dtype=np.int64), test_idx)
    return train_idx, test_idx


def split_site(
    x: NDArray[np.float32], y: NDArray[np.int64], test_fraction: float, seed: int, site_index: int
) -> tuple[ArrayData, ArrayData]:
    train, test = stratified_split(y, test_fraction, seed, site_index)
    return frozen(x[train], y[train]), frozen(x[test], y[test])
