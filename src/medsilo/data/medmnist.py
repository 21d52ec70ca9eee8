"""BreastMNIST and PneumoniaMNIST (MedMNIST v2, 28x28) from their npz files.

The official validation split is folded into training: federated sites here hold one train
and one test set each, and model selection is not done on a central validation set.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from medsilo.data._util import check_labels, check_lengths, check_shape, frozen, read_npz
from medsilo.data.base import CentralData, DataFormatError
from medsilo.data.paths import resolve_root

SPLITS = ("train", "val", "test")


def _read(path: Path, name: str) -> CentralData:
    keys = [f"{s}_{kind}" for s in SPLITS for kind in ("images", "labels")]
    arr = read_npz(path, keys)
    check_lengths(path, [(f"{s}_images", f"{s}_labels") for s in SPLITS], arr)
    xs, ys = {}, {}
    for s in SPLITS:
        images, labels = arr[f"{s}_images"], arr[f"{s}_labels"]
        check_shape(path, f"{s}_images", images, (28, 28))
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        elif labels.ndim != 1:
            raise DataFormatError(
                f"{path}: {s}_labels has shape {labels.shape}; expected (N, 1) or (N,)"
            )
        check_labels(path, f"{s}_labels", labels, 2)
        x = images.astype(np.float32)[:, None] / np.float32(255)
        xs[s], ys[s] = (x - np.float32(0.5)) / np.float32(0.5), labels
    train = frozen(
        np.concatenate([xs["train"], xs["val"]]), np.concatenate([ys["train"], ys["val"]])
    )
    test = frozen(xs["test"], ys["test"])
    return CentralData(name, train, test, num_classes=2, task="binary")


def load_breastmnist(root: Path | str | None = None) -> CentralData:
    """Breast ultrasound, 0 = malignant, 1 = normal or benign; train = train + val (624)."""
    return _load(resolve_root(root), "breastmnist")


def load_pneumoniamnist(root: Path | str | None = None) -> CentralData:
    """Pediatric chest X-ray, 0 = normal, 1 = pneumonia; train = train + val (5,232).

    The bundled train rows are grouped by class, so shuffle (every partitioner does).
    """
    return _load(resolve_root(root), "pneumoniamnist")


@functools.cache
def _load(root: Path, name: str) -> CentralData:
    return _read(root / "medmnist" / f"{name}.npz", name)
