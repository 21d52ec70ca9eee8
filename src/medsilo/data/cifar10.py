"""The bundled CIFAR-10 subset (4,000 train / 1,000 test images with exact pixels).

Full CIFAR-10 is too large to bundle; results on this subset are not comparable with
full-CIFAR numbers from papers.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from medsilo.data._util import check_labels, check_lengths, check_shape, frozen, read_npz
from medsilo.data.base import CentralData
from medsilo.data.paths import resolve_root

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
FILE = "cifar10_subset/cifar10_subset.npz"


def load_cifar10_subset(root: Path | str | None = None) -> CentralData:
    """x (N, 3, 32, 32) standardised per channel with the usual full-CIFAR-10 constants."""
    return _load(resolve_root(root))


@functools.cache
def _load(root: Path) -> CentralData:
    path = root / FILE
    arr = read_npz(path, ["x_train", "y_train", "x_test", "y_test"])
    check_lengths(path, [("x_train", "y_train"), ("x_test", "y_test")], arr)
    mean = np.array(MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.array(STD, np.float32).reshape(1, 3, 1, 1)
    splits = []
    for part in ("train", "test"):
        x, y = arr[f"x_{part}"], arr[f"y_{part}"]
        check_shape(path, f"x_{part}", x, (32, 32, 3))  # stored HWC, as decoded from PNG
        check_shape(path, f"y_{part}", y, ())
        check_labels(path, f"y_{part}", y, 10)
        chw = x.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
        splits.append(frozen((chw - mean) / std, y))
    return CentralData("cifar10_subset", splits[0], splits[1], num_classes=10, task="multiclass")
