"""Datasets, partitioners and the federation builder.

Everything reads from the bundled ``data/`` folder (or ``$MEDSILO_DATA_DIR``) and never
touches the network, so experiments run on air-gapped hospital machines.
"""

from medsilo.data.base import (
    ArrayData,
    CentralData,
    DataFormatError,
    FederatedData,
    SiteData,
    Task,
)
from medsilo.data.cifar10 import load_cifar10_subset
from medsilo.data.heart_disease import HOSPITALS, load_heart_disease
from medsilo.data.idx import load_fashion_mnist, load_mnist
from medsilo.data.medmnist import load_breastmnist, load_pneumoniamnist
from medsilo.data.partition import (
    dirichlet_partition,
    iid_partition,
    match_label_mix,
    quantity_skew_partition,
    shard_partition,
)
from medsilo.data.paths import data_root
from medsilo.data.registry import DATASET_NAMES, build_federation, clear_caches, load_central
from medsilo.data.spec import DataConfig, DatasetName, PartitionName
from medsilo.data.tabular import load_breast_cancer_data

__all__ = [
    "DATASET_NAMES",
    "HOSPITALS",
    "ArrayData",
    "CentralData",
    "DataConfig",
    "DataFormatError",
    "DatasetName",
    "FederatedData",
    "PartitionName",
    "SiteData",
    "Task",
    "build_federation",
    "clear_caches",
    "data_root",
    "dirichlet_partition",
    "iid_partition",
    "load_breast_cancer_data",
    "load_breastmnist",
    "load_central",
    "load_cifar10_subset",
    "load_fashion_mnist",
    "load_heart_disease",
    "load_mnist",
    "load_pneumoniamnist",
    "match_label_mix",
    "quantity_skew_partition",
    "shard_partition",
]
