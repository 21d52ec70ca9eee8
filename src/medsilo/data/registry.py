"""From a :class:`DataConfig` to the sites of a federation.

This is the one place that knows every dataset by name, so the CLI, configs and benchmarks
all resolve names and partitions the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from medsilo.data import cifar10, heart_disease, idx, medmnist, tabular
from medsilo.data._util import frozen
from medsilo.data.base import ArrayData, CentralData, FederatedData, SiteData, in_memory
from medsilo.data.partition import (
    dirichlet_partition,
    iid_partition,
    match_label_mix,
    quantity_skew_partition,
    shard_partition,
)
from medsilo.data.spec import DATASET_NAMES, SITE_HELD_DATASETS, DataConfig
from medsilo.data.standardize import standardize_federation
from medsilo.data.synthetic_segmentation import (
    SEGMENTATION_DATASETS,
    load_synthetic_segmentation,
    load_synthetic_segmentation_central,
)
from medsilo.data.user_dataset import load_user_central, load_user_federation
from medsilo.imports import is_import_path

__all__ = ["DATASET_NAMES", "build_federation", "clear_caches", "load_central"]

_IMAGE_LOADERS: dict[str, Callable[[Path | None], CentralData]] = {
    "mnist": idx.load_mnist,
    "fashion_mnist": idx.load_fashion_mnist,
    "cifar10_subset": cifar10.load_cifar10_subset,
    "breastmnist": medmnist.load_breastmnist,
    "pneumoniamnist": medmnist.load_pneumoniamnist,
}
MIN_SITE_SIZE = 10


def load_central(name: str, root: Path | None = None) -> CentralData:
    """One dataset before any split; heart_disease is pooled over its hospitals (their own
    train/test splits are kept, so the pooled test set is the union of the hospitals')."""
    if name == "heart_disease":
        fed = heart_disease.load_heart_disease(root)
        train = in_memory(fed.pooled_train(), "heart disease")
        test = in_memory(fed.test, "heart disease")
        return CentralData(
            name, frozen(train.x, train.y, train.groups), test, fed.num_classes, fed.task
        )
    if name == "breast_cancer":
        return tabular.load_breast_cancer_data()
    if name in _IMAGE_LOADERS:
        return _IMAGE_LOADERS[name](root)
    if name in SEGMENTATION_DATASETS:
        return load_synthetic_segmentation_central(name)
    if is_import_path(name):
        return load_user_central(name)
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASET_NAMES)}")


def clear_caches() -> None:
    """Forget loaded arrays, e.g. after the files on disk were replaced."""
    for fn in (
        heart_disease._load,
        idx._load_mnist,
        idx._load_fashion,
        cifar10._load,
        medmnist._load,
        tabular.load_breast_cancer_data,
    ):
        fn.cache_clear()


def _cap(data: ArrayData, limit: int | None, rng: np.random.Generator) -> NDArray[np.int64]:
    """Indices of a reproducible random subset (kept in original order), for quick runs."""
    n = len(data)
    if limit is None or limit >= n:
        return np.arange(n, dtype=np.int64)
    return np.sort(rng.choice(n, size=limit, replace=False)).astype(np.int64)


def _natural(cfg: DataConfig, seed: int, root: Path | None) -> FederatedData:
    """The hospitals ``cfg.hospitals`` names (default all four), in that order; caps draw from
    the pooled data of exactly those hospitals."""
    fed = heart_disease.load_heart_disease(root, cfg.hospitals)
    if cfg.max_train_samples is None and cfg.max_test_samples is None:
        return fed
    rng = np.random.default_rng([seed, 1])
    train_keep = _cap(in_memory(fed.pooled_train(), "capping"), cfg.max_train_samples, rng)
    test_keep = _cap(in_memory(fed.test, "capping"), cfg.max_test_samples, rng)
    sites, train_at, test_at = [], 0, 0
    for s in fed.sites:
        tr = train_keep[(train_keep >= train_at) & (train_keep < train_at + len(s.train))]
        te = test_keep[(test_keep >= test_at) & (test_keep < test_at + len(s.test))]
        sites.append(SiteData(s.name, s.train.subset(tr - train_at), s.test.subset(te - test_at)))
        train_at, test_at = train_at + len(s.train), test_at + len(s.test)
    empty = [s.name for s in sites if len(s.train) == 0]
    if empty:
        raise ValueError(
            f"max_train_samples={cfg.max_train_samples} leaves hospital(s) {empty} without "
            "training data; raise it"
        )
    test = ArrayData.concat([in_memory(s.test, "capping") for s in sites])
    return FederatedData(fed.name, sites, test, fed.num_classes, fed.task)


def build_federation(cfg: DataConfig, seed: int, root: Path | None = None) -> FederatedData:
    """The sites described by ``cfg``; the same ``cfg`` and ``seed`` give the same split.

    Partitioned sites are named ``site-00``, ``site-01``, ...; the pooled test set is the whole
    (capped) central test set, which the site test sets partition exactly.
    """
    if cfg.dataset in SITE_HELD_DATASETS:
        fed = _site_held(cfg)
    elif cfg.dataset in SEGMENTATION_DATASETS:
        fed = load_synthetic_segmentation(seed, SEGMENTATION_DATASETS[cfg.dataset])
    elif cfg.partition == "natural" and is_import_path(cfg.dataset):
        fed = load_user_federation(cfg.dataset)
    elif cfg.partition == "natural":
        fed = _natural(cfg, seed, root)
    else:
        fed = _split(cfg, seed, root)
    if cfg.standardize == "federated":
        fed = standardize_federation(fed)
    return fed


def _site_held(cfg: DataConfig) -> FederatedData:
    """Data read at the sites (docs/data-ingestion.md); deferred imports keep pydicom optional
    for federations that never touch DICOM."""
    if cfg.dataset == "dicom":
        from medsilo.data.dicom_site import build_dicom_federation

        assert cfg.dicom is not None  # guaranteed by DataConfig's validator
        return build_dicom_federation(cfg.dicom)[0]
    if cfg.dataset == "images":
        from medsilo.data.image_site import build_image_federation

        assert cfg.images is not None
        return build_image_federation(cfg.images)
    if cfg.dataset == "omop":
        from medsilo.data.omop_sites import build_omop_federation

        assert cfg.omop is not None
        return build_omop_federation(cfg.omop)
    if cfg.dataset == "fhir":
        from medsilo.data.fhir_sites import build_fhir_federation

        assert cfg.fhir is not None
        return build_fhir_federation(cfg.fhir)
    from medsilo.data.tabular_sites import build_tabular_federation

    assert cfg.tabular is not None
    return build_tabular_federation(cfg.tabular)


def _split(cfg: DataConfig, seed: int, root: Path | None) -> FederatedData:
    assert cfg.num_sites is not None  # guaranteed by DataConfig's validator
    k = cfg.num_sites
    central = load_central(cfg.dataset, root)
    rng = np.random.default_rng([seed, 1])  # its own stream: capping must not shift partitions
    train = _capped(central.train, cfg.max_train_samples, rng)
    test = _capped(central.test, cfg.max_test_samples, rng)
    # Tiny quick-run subsets cannot give every site 10 samples; ask for what is feasible.
    min_size = min(MIN_SITE_SIZE, max(1, len(train) // (2 * k)))
    if cfg.partition == "iid":
        train_parts = iid_partition(len(train), k, seed)
    elif cfg.partition == "dirichlet":
        train_parts = dirichlet_partition(train.y, k, cfg.alpha, seed, min_size=min_size)
    elif cfg.partition == "shards":
        train_parts = shard_partition(train.y, k, cfg.classes_per_site, seed)
    else:
        train_parts = quantity_skew_partition(len(train), k, cfg.alpha, seed, min_size=min_size)
    if cfg.partition in ("dirichlet", "shards"):
        test_parts = match_label_mix(test.y, train_parts, train.y, seed)
    else:
        test_parts = iid_partition(len(test), k, seed)
    sites = [
        SiteData(f"site-{i:02d}", _freeze(train.subset(tr)), _freeze(test.subset(te)))
        for i, (tr, te) in enumerate(zip(train_parts, test_parts, strict=True))
    ]
    return FederatedData(cfg.dataset, sites, test, central.num_classes, central.task)


def _freeze(data: ArrayData) -> ArrayData:
    return frozen(data.x, data.y, data.groups)


def _capped(data: ArrayData, limit: int | None, rng: np.random.Generator) -> ArrayData:
    """The data itself when uncapped: copying 60k MNIST images for nothing costs 200 MB."""
    if limit is None or limit >= len(data):
        return data
    return _freeze(data.subset(_cap(data, limit, rng)))
