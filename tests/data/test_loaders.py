"""The bundled datasets load with the shapes, dtypes and class counts their PROVENANCE states."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from medsilo.data import (
    CentralData,
    DataFormatError,
    cifar10,
    data_root,
    heart_disease,
    idx,
    load_breast_cancer_data,
    load_breastmnist,
    load_cifar10_subset,
    load_fashion_mnist,
    load_mnist,
    load_pneumoniamnist,
    medmnist,
    tabular,
)

REPO_DATA = Path(__file__).resolve().parents[2] / "data"


def _check_arrays(d: CentralData, shape: tuple[int, ...], n_train: int, n_test: int) -> None:
    for part, n in ((d.train, n_train), (d.test, n_test)):
        assert part.x.shape == (n, *shape)
        assert part.x.dtype == np.float32 and part.y.dtype == np.int64
        assert np.isfinite(part.x).all()
        assert not part.x.flags.writeable and not part.y.flags.writeable
    assert d.input_shape == shape


def test_data_root_defaults_to_repo_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDSILO_DATA_DIR", raising=False)
    assert data_root() == REPO_DATA


def test_data_root_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDSILO_DATA_DIR", str(tmp_path))
    assert data_root() == tmp_path.resolve()
    missing = tmp_path / "nowhere"
    monkeypatch.setenv("MEDSILO_DATA_DIR", str(missing))
    with pytest.raises(DataFormatError, match="MEDSILO_DATA_DIR") as err:
        data_root()
    assert str(missing) in str(err.value)


def test_mnist_matches_provenance() -> None:
    d = load_mnist(REPO_DATA)
    _check_arrays(d, (1, 28, 28), 60000, 10000)
    assert np.bincount(d.train.y).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949,
    ]  # fmt: skip
    assert np.bincount(d.test.y).tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009,
    ]  # fmt: skip
    # The fixed constants are MNIST's own train statistics, so the result is standardised.
    assert abs(float(d.train.x.mean())) < 1e-3
    assert abs(float(d.train.x.std()) - 1.0) < 1e-3
    assert d.num_classes == 10 and d.task == "multiclass"


def test_fashion_mnist_matches_provenance() -> None:
    d = load_fashion_mnist(REPO_DATA)
    _check_arrays(d, (1, 28, 28), 60000, 10000)
    assert np.bincount(d.train.y).tolist() == [6000] * 10
    assert np.bincount(d.test.y).tolist() == [1000] * 10
    # Recover raw pixels: the test mean/255 is stated as 0.286849.
    raw_mean = float(d.test.x.mean()) * 0.3530 + 0.2860
    assert raw_mean == pytest.approx(0.286849, abs=1e-5)


def test_cifar10_subset_matches_provenance() -> None:
    d = load_cifar10_subset(REPO_DATA)
    _check_arrays(d, (3, 32, 32), 4000, 1000)
    assert np.bincount(d.train.y).tolist() == [396, 366, 420, 384, 422, 393, 414, 385, 407, 413]
    assert np.bincount(d.test.y).tolist() == [103, 89, 100, 103, 90, 86, 112, 102, 106, 109]
    assert d.train.y[:20].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3, 4, 7, 7, 2, 9, 9, 9, 3, 2, 6]
    # Red channel, row 0 of the first training image, back in 0..255 (checks the HWC->CHW move).
    red = np.rint((d.train.x[0, 0, 0, :10] * 0.2470 + 0.4914) * 255).astype(int)
    assert red.tolist() == [59, 43, 50, 68, 98, 119, 139, 145, 149, 149]


def test_breastmnist_train_includes_val() -> None:
    d = load_breastmnist(REPO_DATA)
    _check_arrays(d, (1, 28, 28), 546 + 78, 156)
    assert np.bincount(d.train.y).tolist() == [147 + 21, 399 + 57]
    assert np.bincount(d.test.y).tolist() == [42, 114]
    assert d.train.x.min() >= -1.0 and d.train.x.max() <= 1.0
    assert d.task == "binary" and d.num_classes == 2


def test_pneumoniamnist_counts() -> None:
    d = load_pneumoniamnist(REPO_DATA)
    _check_arrays(d, (1, 28, 28), 4708 + 524, 624)
    assert np.bincount(d.train.y).tolist() == [1214 + 135, 3494 + 389]
    assert np.bincount(d.test.y).tolist() == [234, 390]


def test_breast_cancer_split_and_scaling() -> None:
    d = load_breast_cancer_data()
    _check_arrays(d, (30,), 426, 143)
    assert np.bincount(d.train.y).tolist() == [159, 267]  # stratified: 212/357 overall
    assert np.bincount(d.test.y).tolist() == [53, 90]
    np.testing.assert_allclose(d.train.x.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(d.train.x.std(axis=0), 1.0, atol=1e-4)
    assert np.abs(d.test.x.mean(axis=0)).max() > 1e-3  # test set was not used for the scaling


def test_loads_are_cached_per_resolved_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_DATA.parent)
    assert load_cifar10_subset(Path("data")) is load_cifar10_subset(REPO_DATA)
    d = load_cifar10_subset(REPO_DATA)
    with pytest.raises(ValueError, match="read-only"):
        d.train.x[0, 0, 0, 0] = 1.0


def test_loaders_never_open_a_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a data loader tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    # __wrapped__ bypasses the in-process cache, so the files are really read again.
    heart_disease._load.__wrapped__(REPO_DATA)
    medmnist._load.__wrapped__(REPO_DATA, "breastmnist")
    cifar10._load.__wrapped__(REPO_DATA)
    idx._load_mnist.__wrapped__(REPO_DATA)
    tabular.load_breast_cancer_data.__wrapped__()
