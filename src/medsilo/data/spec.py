"""The ``data:`` section of an experiment config.

Validated up front so that a typo or an impossible combination fails when the config is read,
not minutes into a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medsilo.data import heart_disease
from medsilo.data.image_config import ImageSourceConfig
from medsilo.data.sources import (
    DicomSourceConfig,
    FhirSourceConfig,
    OmopSourceConfig,
    TabularSourceConfig,
)
from medsilo.data.synthetic_segmentation import (
    SEGMENTATION_CLASSES,
    SEGMENTATION_DATASETS,
    SITE_PROFILES,
)
from medsilo.imports import ImportPath, is_import_path

BundledDatasetName = Literal[
    "heart_disease",
    "mnist",
    "fashion_mnist",
    "cifar10_subset",
    "breastmnist",
    "pneumoniamnist",
    "breast_cancer",
    "synthetic_segmentation",
    "synthetic_segmentation_3d",
]
#: Data held at the sites and described in the config (docs/data-ingestion.md).
SiteHeldDatasetName = Literal["dicom", "tabular", "images", "omop", "fhir"]
DatasetName = Literal[BundledDatasetName, SiteHeldDatasetName]
PartitionName = Literal["natural", "iid", "dirichlet", "shards", "quantity_skew"]

DATASET_NAMES: tuple[str, ...] = get_args(BundledDatasetName)  # the bundled ones
SITE_HELD_DATASETS: tuple[str, ...] = get_args(SiteHeldDatasetName)
PARTITION_NAMES: tuple[str, ...] = get_args(PartitionName)
NUM_CLASSES: dict[str, int] = {
    "heart_disease": 2,
    "mnist": 10,
    "fashion_mnist": 10,
    "cifar10_subset": 10,
    "breastmnist": 2,
    "pneumoniamnist": 2,
    "breast_cancer": 2,
    "synthetic_segmentation": SEGMENTATION_CLASSES,
    "synthetic_segmentation_3d": SEGMENTATION_CLASSES,
}
#: Datasets with their own hospitals (the synthetic segmentation sites: SITE_PROFILES).
NATURAL_SITES: dict[str, int] = {
    "heart_disease": 4,
    **dict.fromkeys(SEGMENTATION_DATASETS, len(SITE_PROFILES)),
}
#: Subgroup columns a dataset carries beside its features (``evaluation.subgroup``).
SUBGROUP_COLUMNS: dict[str, tuple[str, ...]] = {"heart_disease": heart_disease.SUBGROUPS}


class DataConfig(BaseModel):
    """Which dataset, and how it is spread over sites."""

    model_config = ConfigDict(extra="forbid")

    dataset: DatasetName | ImportPath = Field(
        description="a bundled dataset, dicom/tabular/images/omop/fhir (site-held), or the "
        "import path 'package.module:factory' of the user's own (medsilo.data.user_dataset)"
    )
    partition: PartitionName = "natural"
    num_sites: int | None = Field(default=None, ge=1)
    alpha: float = Field(default=0.5, gt=0)
    classes_per_site: int = Field(default=2, ge=1)
    hospitals: list[str] | None = Field(
        default=None,
        description="heart_disease natural only: the hospitals that take part, in this order "
        "(the federation's site order); default all four (cleveland, hungarian, switzerland, va)",
    )
    max_train_samples: int | None = Field(default=None, ge=1)
    max_test_samples: int | None = Field(default=None, ge=1)
    standardize: Literal["none", "federated"] = Field(
        default="none",
        description="federated: scale features by the federation-wide mean/std, computed "
        "from per-site sums only (see medsilo.data.standardize)",
    )
    dicom: DicomSourceConfig | None = Field(
        default=None, description="dataset dicom: per-site DICOM folders and preprocessing"
    )
    tabular: TabularSourceConfig | None = Field(
        default=None, description="dataset tabular: federation schema and per-site CSVs"
    )
    images: ImageSourceConfig | None = Field(
        default=None,
        description="dataset images: per-site image folders read from disk item by item "
        "(docs/bring-your-own.md)",
    )
    omop: OmopSourceConfig | None = Field(
        default=None,
        description="dataset omop: per-site OMOP CDM databases and the cohort specification "
        "(docs/omop.md)",
    )
    fhir: FhirSourceConfig | None = Field(
        default=None,
        description="dataset fhir: per-site FHIR R4 bundles and the feature specification "
        "(docs/fhir.md)",
    )

    def anchored_at(self, folder: Path) -> DataConfig:
        """The section with the site-held data's relative paths read from ``folder`` (the
        config file's folder); bundled datasets have no paths."""
        update: dict[str, object] = {}
        if self.dicom is not None:
            update["dicom"] = self.dicom.anchored_at(folder)
        if self.tabular is not None:
            update["tabular"] = self.tabular.anchored_at(folder)
        if self.images is not None:
            update["images"] = self.images.anchored_at(folder)
        if self.omop is not None:
            update["omop"] = self.omop.anchored_at(folder)
        if self.fhir is not None:
            update["fhir"] = self.fhir.anchored_at(folder)
        return self.model_copy(update=update)

    def ingestion_reports(self) -> tuple[Path, list[str]] | None:
        """Where image sources keep each site's ingestion report, and the sites; None for
        data without one."""
        if self.dicom is not None:
            return self.dicom.cache_dir, [s.name for s in self.dicom.sites]
        if self.images is not None:
            return self.images.report_dir, [s.name for s in self.images.sites]
        return None

    @model_validator(mode="after")
    def _check_combination(self) -> DataConfig:
        self._check_hospitals()
        if self._check_site_held():
            return self
        self._check_segmentation()
        user = is_import_path(self.dataset)
        if self.partition == "natural" and user:
            if self.max_train_samples is not None or self.max_test_samples is not None:
                raise ValueError(
                    "max_train_samples/max_test_samples cap a dataset medsilo splits; a user "
                    "dataset with partition 'natural' brings its own sites: cap it there"
                )
        elif self.partition == "natural":
            if self.dataset not in NATURAL_SITES:
                raise ValueError(
                    "partition 'natural' needs a dataset with hospitals "
                    f"({', '.join(NATURAL_SITES)}); "
                    f"use iid, dirichlet, shards or quantity_skew for {self.dataset}"
                )
            hospitals = (
                NATURAL_SITES[self.dataset] if self.hospitals is None else len(self.hospitals)
            )
            if self.num_sites is not None and self.num_sites != hospitals:
                raise ValueError(
                    f"num_sites={self.num_sites} but partition 'natural' of {self.dataset} has "
                    f"exactly {hospitals} hospitals; leave num_sites unset"
                )
        elif self.num_sites is None:
            raise ValueError(f"partition {self.partition!r} needs num_sites")
        if (
            self.partition == "shards"
            and not user
            and self.classes_per_site > NUM_CLASSES[self.dataset]
        ):
            raise ValueError(
                f"classes_per_site={self.classes_per_site} but {self.dataset} has only "
                f"{NUM_CLASSES[self.dataset]} classes"
            )
        return self

    def _check_hospitals(self) -> None:
        if self.hospitals is None:
            return
        if self.dataset != "heart_disease" or self.partition != "natural":
            raise ValueError(
                "data.hospitals picks hospitals of dataset 'heart_disease' with partition "
                f"'natural'; got dataset {self.dataset!r}, partition {self.partition!r}"
            )
        from medsilo.data.heart_disease import check_hospitals  # sklearn only when used

        check_hospitals(self.hospitals, where="data.hospitals")

    def _check_segmentation(self) -> None:
        """The synthetic segmentation sites are fixed hospitals of fixed sizes, with masks
        for labels (nothing to split by label)."""
        if self.dataset not in SEGMENTATION_DATASETS:
            return
        if self.partition != "natural":
            raise ValueError(
                f"dataset {self.dataset!r} has its own {len(SITE_PROFILES)} hospitals: "
                f"partition must be 'natural', got {self.partition!r}"
            )
        if self.max_train_samples is not None or self.max_test_samples is not None:
            raise ValueError(
                f"max_train_samples/max_test_samples are not supported for {self.dataset!r}: "
                "its hospitals have fixed sizes"
            )

    def _check_site_held(self) -> bool:
        """True for site-held datasets (checked here); their sites are the config's sites."""
        for name in SITE_HELD_DATASETS:
            if name != self.dataset and getattr(self, name) is not None:
                raise ValueError(f"data.{name} is set but dataset is {self.dataset!r}")
        if self.dataset not in SITE_HELD_DATASETS:
            return False
        source: (
            DicomSourceConfig
            | TabularSourceConfig
            | ImageSourceConfig
            | OmopSourceConfig
            | FhirSourceConfig
            | None
        ) = getattr(self, self.dataset)
        if source is None:
            raise ValueError(f"dataset {self.dataset!r} needs a data.{self.dataset} section")
        if self.partition != "natural":
            raise ValueError(
                f"dataset {self.dataset!r} keeps each hospital's own data: partition must be "
                f"'natural', got {self.partition!r}"
            )
        sites = len(source.sites)
        if self.num_sites is not None and self.num_sites != sites:
            raise ValueError(
                f"num_sites={self.num_sites} but data.{self.dataset}.sites lists {sites} sites; "
                "leave num_sites unset"
            )
        if self.max_train_samples is not None or self.max_test_samples is not None:
            raise ValueError(
                f"max_train_samples/max_test_samples are not supported for {self.dataset!r}; "
                "list fewer files or rows at the sites instead"
            )
        if self.dataset == "images" and self.standardize != "none":
            raise ValueError(
                "standardize: federated needs every training row in memory; dataset 'images' "
                "streams its files: scale each image with data.images.intensity instead"
            )
        return True
