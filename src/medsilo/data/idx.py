"""MNIST and Fashion-MNIST from their original IDX gzip files.

The files are the official byte-identical releases, so they are parsed directly (no torchvision,
which would want to download). Inputs are standardised with the fixed published constants so
that every site applies the same transform and no statistic leaks between sites.
"""

from __future__ import annotations

import functools
import gzip
import math
import zlib
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from medsilo.data._util import check_labels, frozen
from medsilo.data.base import ArrayData, CentralData, DataFormatError
from medsilo.data.paths import require_file, resolve_root

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530


def _read_gzip(path: Path) -> bytes:
    require_file(path)
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DataFormatError(f"{path}: not a complete gzip file ({err})") from err


def _header(path: Path, data: bytes, magic: int, ndim: int) -> list[int]:
    size = 4 + 4 * ndim
    if len(data) < size:
        raise DataFormatError(
            f"{path}: truncated IDX header: expected {size} bytes, got {len(data)}"
        )
    fields = [int.from_bytes(data[i : i + 4], "big") for i in range(0, size, 4)]
    if fields[0] != magic:
        raise DataFormatError(
            f"{path}: bad IDX magic number {fields[0]}; expected {magic} "
            f"({'images' if magic == IMAGES_MAGIC else 'labels'})"
        )
    dims = fields[1:]
    expected = size + math.prod(dims)  # Python ints: a corrupt header must not overflow
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "oversized"
        raise DataFormatError(
            f"{path}: {kind} IDX file: header dims {dims} need {expected} bytes after "
            f"decompression, got {len(data)}"
        )
    return dims


def read_idx_images(path: Path) -> NDArray[np.uint8]:
    data = _read_gzip(path)
    n, rows, cols = _header(path, data, IMAGES_MAGIC, 3)
    return np.frombuffer(data, np.uint8, offset=16).reshape(n, rows, cols)


def read_idx_labels(path: Path) -> NDArray[np.uint8]:
    data = _read_gzip(path)
    _header(path, data, LABELS_MAGIC, 1)
    return np.frombuffer(data, np.uint8, offset=8)


def _split(folder: Path, prefix: str, mean: float, std: float) -> ArrayData:
    images_path = folder / f"{prefix}-images-idx3-ubyte.gz"
    labels_path = folder / f"{prefix}-labels-idx1-ubyte.gz"
    images = read_idx_images(images_path)
    labels = read_idx_labels(labels_path)
    if images.shape[1:] != (28, 28):
        raise DataFormatError(f"{images_path}: images are {images.shape[1:]}; expected 28x28")
    if len(images) != len(labels):
        raise DataFormatError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels"
        )
    check_labels(labels_path, "labels", labels, 10)
    x = images.astype(np.float32)[:, None]
    x *= np.float32(1 / 255)
    x -= np.float32(mean)
    x /= np.float32(std)
    return frozen(x, labels)


def _central(root: Path, name: str, mean: float, std: float) -> CentralData:
    folder = root / name
    train = _split(folder, "train", mean, std)
    test = _split(folder, "t10k", mean, std)
    return CentralData(name, train, test, num_classes=10, task="multiclass")


def load_mnist(root: Path | str | None = None) -> CentralData:
    """MNIST 60k/10k, x (N, 1, 28, 28) standardised with mean 0.1307, std 0.3081."""
    return _load_mnist(resolve_root(root))


def load_fashion_mnist(root: Path | str | None = None) -> CentralData:
    """Fashion-MNIST 60k/10k, x (N, 1, 28, 28) standardised with mean 0.2860, std 0.3530."""
    return _load_fashion(resolve_root(root))


@functools.cache
def _load_mnist(root: Path) -> CentralData:
    return _central(root, "mnist", MNIST_MEAN, MNIST_STD)


@functools.cache
def _load_fashion(root: Path) -> CentralData:
    return _central(root, "fashion_mnist", FASHION_MEAN, FASHION_STD)
