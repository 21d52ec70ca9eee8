"""Small helpers shared by the loaders."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medsilo.data.base import ArrayData, DataFormatError
from medsilo.data.paths import require_file


def frozen(
    x: NDArray[Any], y: NDArray[Any], groups: Mapping[str, NDArray[Any]] | None = None
) -> ArrayData:
    """Read-only float32/int64 arrays (and subgroup columns): loaders cache their results, so
    a caller that edits an array in place would silently corrupt every later load."""
    xs = np.ascontiguousarray(x, dtype=np.float32)
    ys = np.ascontiguousarray(y, dtype=np.int64)
    columns = {k: np.array(v, dtype=np.str_) for k, v in (groups or {}).items()}
    arrays: list[NDArray[Any]] = [xs, ys, *columns.values()]
    for array in arrays:
        array.flags.writeable = False
    return ArrayData(xs, ys, columns)


def read_npz(path: Path, keys: list[str]) -> dict[str, NDArray[Any]]:
    """Only the named arrays, with errors that name the file and the missing key."""
    require_file(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise DataFormatError(
                    f"{path}: missing key(s) {missing}; the file has {sorted(npz.files)}"
                )
            return {k: np.asarray(npz[k]) for k in keys}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        if isinstance(err, DataFormatError):
            raise
        raise DataFormatError(f"{path}: not a readable .npz file ({err})") from err


def check_labels(path: Path, key: str, y: NDArray[Any], num_classes: int) -> None:
    """Out-of-range labels would otherwise surface much later as a cryptic loss error."""
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= num_classes):
        bad = y[(y < 0) | (y >= num_classes)] if np.issubdtype(y.dtype, np.number) else y
        raise DataFormatError(
            f"{path}: {key} must hold integer labels 0..{num_classes - 1}; "
            f"found dtype {y.dtype}, values such as {bad.ravel()[:5].tolist()}"
        )


def check_lengths(
    path: Path, pairs: list[tuple[str, str]], arrays: dict[str, NDArray[Any]]
) -> None:
    for xk, yk in pairs:
        if len(arrays[xk]) != len(arrays[yk]):
            raise DataFormatError(
                f"{path}: {xk} has {len(arrays[xk])} rows but {yk} has {len(arrays[yk])}"
            )


def check_shape(path: Path, key: str, arr: NDArray[Any], tail: tuple[int, ...]) -> None:
    if arr.ndim != 1 + len(tail) or tuple(arr.shape[1:]) != tail:
        raise DataFormatError(
            f"{path}: {key} has shape {arr.shape}; expected (N, {', '.join(map(str, tail))})"
        )
