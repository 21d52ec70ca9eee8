"""DataConfig validation and the federation builder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from medsilo.data import (
    DATASET_NAMES,
    DataConfig,
    FederatedData,
    build_federation,
    load_central,
)
from medsilo.data.spec import NUM_CLASSES
from medsilo.data.synthetic_segmentation import SEGMENTATION_DATASETS

REPO_DATA = Path(__file__).resolve().parents[2] / "data"


def _cfg(**kwargs: Any) -> DataConfig:
    return DataConfig.model_validate(kwargs)


# --- config validation -----------------------------------------------------------------------


def test_extra_key_is_rejected_by_name() -> None:
    with pytest.raises(ValidationError) as err:
        _cfg(dataset="mnist", partition="iid", num_sites=3, n_sites=3)
    assert "n_sites" in str(err.value) and "extra" in str(err.value).lower()


def test_natural_needs_hospitals() -> None:
    with pytest.raises(ValidationError) as err:
        _cfg(dataset="mnist")
    msg = str(err.value)
    assert (
        "partition 'natural' needs a dataset with hospitals (heart_disease, "
        "synthetic_segmentation, synthetic_segmentation_3d)" in msg
    )
    assert "use iid, dirichlet, shards or quantity_skew for mnist" in msg


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"dataset": "cifar10", "partition": "iid", "num_sites": 2}, "dataset"),
        ({"dataset": "mnist", "partition": "random", "num_sites": 2}, "partition"),
        ({"dataset": "mnist", "partition": "dirichlet"}, "partition 'dirichlet' needs num_sites"),
        ({"dataset": "mnist", "partition": "iid", "num_sites": 0}, "num_sites"),
        ({"dataset": "mnist", "partition": "dirichlet", "num_sites": 2, "alpha": 0}, "alpha"),
        (
            {"dataset": "mnist", "partition": "iid", "num_sites": 2, "max_train_samples": 0},
            "max_train",
        ),
        (
            {
                "dataset": "breastmnist",
                "partition": "shards",
                "num_sites": 2,
                "classes_per_site": 3,
            },
            "classes_per_site=3 but breastmnist has only 2 classes",
        ),
        ({"dataset": "heart_disease", "num_sites": 3}, "exactly 4 hospitals"),
    ],
)
def test_bad_values_are_named(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        _cfg(**kwargs)


def test_defaults() -> None:
    cfg = _cfg(dataset="heart_disease")
    assert cfg.partition == "natural" and cfg.num_sites is None and cfg.alpha == 0.5
    assert _cfg(dataset="heart_disease", num_sites=4).num_sites == 4


# --- load_central ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_load_central_every_dataset(name: str) -> None:
    d = load_central(name, REPO_DATA)
    assert d.name == name and d.num_classes == NUM_CLASSES[name]
    if name in SEGMENTATION_DATASETS:  # labels are masks of background and object
        assert d.task == "segmentation" and d.train.y.shape == d.train.x.shape
    else:
        assert d.task == ("binary" if d.num_classes == 2 else "multiclass")
    assert set(np.unique(d.train.y)) == set(range(d.num_classes))
    assert d.train.x.shape[1:] == d.test.x.shape[1:]


def test_load_central_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'cifar100'; known: heart_disease, mnist"):
        load_central("cifar100")


# --- build_federation ------------------------------------------------------------------------


def _union_is_test(fed: FederatedData) -> None:
    site_tests = np.concatenate([s.test.y for s in fed.sites])
    assert len(site_tests) == len(fed.test)
    assert np.array_equal(np.sort(site_tests), np.sort(fed.test.y))


def test_natural_is_the_hospitals() -> None:
    fed = build_federation(_cfg(dataset="heart_disease"), seed=0, root=REPO_DATA)
    assert fed.site_names == ["cleveland", "hungarian", "switzerland", "va"]
    assert len(fed.test) == 254
    _union_is_test(fed)


def test_natural_with_caps_keeps_every_hospital() -> None:
    cfg = _cfg(dataset="heart_disease", max_train_samples=100, max_test_samples=50)
    fed = build_federation(cfg, seed=0, root=REPO_DATA)
    assert sum(len(s.train) for s in fed.sites) == 100 and len(fed.test) == 50
    assert all(len(s.train) > 0 for s in fed.sites)
    _union_is_test(fed)


@pytest.mark.parametrize("partition", ["iid", "dirichlet", "shards", "quantity_skew"])
def test_partitioned_federation(partition: str) -> None:
    cfg = _cfg(dataset="cifar10_subset", partition=partition, num_sites=5, alpha=0.3)
    fed = build_federation(cfg, seed=7, root=REPO_DATA)
    central = load_central("cifar10_subset", REPO_DATA)
    assert fed.site_names == ["site-00", "site-01", "site-02", "site-03", "site-04"]
    assert fed.input_shape == (3, 32, 32) and fed.num_classes == 10
    assert fed.test is central.test or np.array_equal(fed.test.y, central.test.y)
    assert sum(len(s.train) for s in fed.sites) == len(central.train)
    _union_is_test(fed)
    if partition == "shards":
        assert all(len(np.unique(s.train.y)) == 2 for s in fed.sites)
        assert all(set(np.unique(s.test.y)) <= set(np.unique(s.train.y)) for s in fed.sites)
    again = build_federation(cfg, seed=7, root=REPO_DATA)
    other = build_federation(cfg, seed=8, root=REPO_DATA)
    for a, b in zip(fed.sites, again.sites, strict=True):
        assert np.array_equal(a.train.x, b.train.x) and np.array_equal(a.test.y, b.test.y)
    assert any(
        len(a.train) != len(b.train) or not np.array_equal(a.train.y, b.train.y)
        for a, b in zip(fed.sites, other.sites, strict=True)
    )


def test_caps_subsample_before_partitioning() -> None:
    cfg = _cfg(
        dataset="mnist",
        partition="dirichlet",
        num_sites=4,
        max_train_samples=400,
        max_test_samples=100,
    )
    fed = build_federation(cfg, seed=0, root=REPO_DATA)
    assert sum(len(s.train) for s in fed.sites) == 400
    assert len(fed.test) == 100
    _union_is_test(fed)
    # A tiny cap still builds: the minimum site size (10) shrinks to n // (2 * sites) = 6.
    tiny = _cfg(dataset="breast_cancer", partition="dirichlet", num_sites=5, max_train_samples=60)
    sizes = [len(s.train) for s in build_federation(tiny, seed=0).sites]
    assert sum(sizes) == 60 and min(sizes) >= 6


def test_partitioned_sites_are_read_only() -> None:
    cfg = _cfg(dataset="breast_cancer", partition="iid", num_sites=3)
    site = build_federation(cfg, seed=0).sites[0]
    with pytest.raises(ValueError, match="read-only"):
        site.train.x[0, 0] = 0.0
