"""Malformed data files fail with a message that says which file, row and column to fix."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from medsilo.data import (
    DataFormatError,
    load_breastmnist,
    load_cifar10_subset,
    load_heart_disease,
    load_mnist,
)

REPO_DATA = Path(__file__).resolve().parents[2] / "data"


def _heart_copy(root: Path) -> Path:
    folder = root / "heart_disease"
    shutil.copytree(REPO_DATA / "heart_disease", folder)
    for f in folder.iterdir():
        f.chmod(0o644)
    return folder


def _replace_line(path: Path, row: int, line: str) -> None:
    lines = path.read_text().splitlines()
    lines[row - 1] = line
    path.write_text("\n".join(lines) + "\n")


def test_heart_non_numeric_value_names_file_row_column(tmp_path: Path) -> None:
    path = _heart_copy(tmp_path) / "processed.va.data"
    _replace_line(path, 7, "62,1,3,160,abc,0,1,145,0,0,?,?,?,1")
    with pytest.raises(DataFormatError) as err:
        load_heart_disease(tmp_path)
    msg = str(err.value)
    assert "processed.va.data" in msg and "line 7" in msg and "'chol'" in msg and "'abc'" in msg


def test_heart_wrong_column_count(tmp_path: Path) -> None:
    path = _heart_copy(tmp_path) / "processed.hungarian.data"
    _replace_line(path, 12, "40,1,2,130,200,0,0,150,0,0,?,?,?")
    with pytest.raises(
        DataFormatError, match=r"(?s)processed\.hungarian\.data: .*14 fields.*line 12 has 13"
    ):
        load_heart_disease(tmp_path)


def test_heart_unknown_category_code(tmp_path: Path) -> None:
    path = _heart_copy(tmp_path) / "processed.cleveland.data"
    _replace_line(path, 3, "67.0,1.0,7.0,120.0,229.0,0.0,2.0,129.0,1.0,2.6,2.0,2.0,7.0,1")
    with pytest.raises(
        DataFormatError, match=r"(?s)cleveland\.data: .*column 'cp': .*line 3: '7\.0'"
    ):
        load_heart_disease(tmp_path)


@pytest.mark.parametrize(
    ("line", "column", "shown"),
    [
        ("6300.0,1.0,1.0,145.0,233.0,1.0,2.0,150.0,0.0,2.3,3.0,0.0,6.0,0", "age", "6300 years"),
        ("63.0,1.0,1.0,145.0,-5000,1.0,2.0,150.0,0.0,2.3,3.0,0.0,6.0,0", "chol", "-5000 mg/dL"),
        ("63.0,1.0,1.0,145.0,233.0,1.0,2.0,150.0,0.0,2.3,3.0,0.0,6.0,9", "num", "'9'"),
        ("63.0,3.0,1.0,145.0,233.0,1.0,2.0,150.0,0.0,2.3,3.0,0.0,6.0,0", "sex", "'3.0'"),
    ],
    ids=["age-6300", "cholesterol-negative", "diagnosis-9", "sex-3"],
)
def test_heart_value_outside_the_schema_is_refused(
    tmp_path: Path, line: str, column: str, shown: str
) -> None:
    """Physiologically impossible values and codes outside heart-disease.names are refused by
    the tabular schema's own range and code checks, naming file, line and column."""
    path = _heart_copy(tmp_path) / "processed.cleveland.data"
    _replace_line(path, 5, line)
    with pytest.raises(DataFormatError) as err:
        load_heart_disease(tmp_path)
    msg = str(err.value)
    assert str(path) in msg and f"column {column!r}" in msg
    assert "line 5" in msg and shown in msg


def test_heart_reports_every_bad_value_at_once(tmp_path: Path) -> None:
    path = _heart_copy(tmp_path) / "processed.va.data"
    _replace_line(path, 2, "44,1,4,130,209,0,1,127,0,0,?,?,?,0")
    _replace_line(path, 3, "6300,1,4,130,209,0,1,127,0,0,?,?,?,0")
    _replace_line(path, 9, "60,1,4,130,-5000,0,1,127,0,0,?,?,?,0")
    with pytest.raises(DataFormatError) as err:
        load_heart_disease(tmp_path)
    msg = str(err.value)
    assert "column 'age'" in msg and "line 3: 6300 years" in msg
    assert "column 'chol'" in msg and "line 9: -5000 mg/dL" in msg


def test_heart_missing_file_names_full_path(tmp_path: Path) -> None:
    folder = _heart_copy(tmp_path)
    (folder / "processed.switzerland.data").unlink()
    with pytest.raises(DataFormatError) as err:
        load_heart_disease(tmp_path)
    assert str(folder / "processed.switzerland.data") in str(err.value)


def _write_idx(folder: Path, prefix: str, images: bytes, labels: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(images)
    with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(labels)


def _header(*fields: int) -> bytes:
    return b"".join(f.to_bytes(4, "big") for f in fields)


def test_idx_truncated_reports_expected_and_actual_bytes(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    images = _header(2051, 3, 28, 28) + bytes(3 * 784 - 100)
    _write_idx(folder, "train", images, _header(2049, 3) + bytes(3))
    with pytest.raises(DataFormatError) as err:
        load_mnist(tmp_path)
    msg = str(err.value)
    assert "train-images-idx3-ubyte.gz" in msg and "truncated" in msg
    assert str(16 + 3 * 784) in msg and str(16 + 3 * 784 - 100) in msg


def test_idx_bad_magic(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    _write_idx(folder, "train", _header(2051, 1, 28, 28) + bytes(784), _header(2051, 1) + bytes(1))
    with pytest.raises(DataFormatError, match=r"train-labels-idx1-ubyte\.gz: bad IDX magic.*2049"):
        load_mnist(tmp_path)


def test_idx_not_gzip_and_count_mismatch(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    _write_idx(
        folder, "train", _header(2051, 2, 28, 28) + bytes(2 * 784), _header(2049, 3) + bytes(3)
    )
    with pytest.raises(DataFormatError, match=r"has 2 images but .* has 3 labels"):
        load_mnist(tmp_path)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataFormatError, match=r"train-labels-idx1-ubyte\.gz: not a complete gzip"):
        load_mnist(tmp_path)  # failed loads are not cached, so the file is read again


def test_idx_missing_test_file(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    _write_idx(folder, "train", _header(2051, 1, 28, 28) + bytes(784), _header(2049, 1) + bytes(1))
    with pytest.raises(DataFormatError, match=r"expected .*mnist/t10k-images-idx3-ubyte\.gz"):
        load_mnist(tmp_path)


def _cifar(root: Path, **arrays: np.ndarray) -> None:
    (root / "cifar10_subset").mkdir(parents=True)
    np.savez(root / "cifar10_subset" / "cifar10_subset.npz", **arrays)  # type: ignore[arg-type]


def test_npz_missing_key(tmp_path: Path) -> None:
    x = np.zeros((4, 32, 32, 3), np.uint8)
    _cifar(tmp_path, x_train=x, y_train=np.zeros(4, np.uint8), x_test=x)
    with pytest.raises(
        DataFormatError, match=r"cifar10_subset\.npz: missing key\(s\) \['y_test'\]"
    ):
        load_cifar10_subset(tmp_path)


def test_npz_mismatched_lengths(tmp_path: Path) -> None:
    x = np.zeros((4, 32, 32, 3), np.uint8)
    y = np.zeros(4, np.uint8)
    _cifar(tmp_path, x_train=x, y_train=y, x_test=x, y_test=y[:3])
    with pytest.raises(DataFormatError, match="x_test has 4 rows but y_test has 3"):
        load_cifar10_subset(tmp_path)


def test_npz_bad_labels_and_shapes(tmp_path: Path) -> None:
    folder = tmp_path / "medmnist"
    folder.mkdir()
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = np.zeros((3, 28, 28), np.uint8)
        arrays[f"{split}_labels"] = np.zeros((3, 1), np.uint8)
    arrays["val_labels"] = np.array([[0], [1], [2]], np.uint8)
    np.savez(folder / "breastmnist.npz", **arrays)  # type: ignore[arg-type]
    with pytest.raises(DataFormatError, match=r"breastmnist\.npz: val_labels .*0\.\.1.*\[2\]"):
        load_breastmnist(tmp_path)
    (folder / "breastmnist.npz").write_bytes(b"garbage")
    with pytest.raises(DataFormatError, match=r"breastmnist\.npz: not a readable \.npz"):
        load_breastmnist(tmp_path)
