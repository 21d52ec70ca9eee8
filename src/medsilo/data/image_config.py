"""``data.images``: each site's folder of images (PNG, JPEG, NIfTI, DICOM) with a labels CSV.

Only paths and settings (no I/O), so a config is validated on a machine that holds no image.
Everything a site needs to read its items the same way as every other site is here: the task,
the class (or label, or target) names shared by all sites, the model's input size and
channels, the intensity scaling and the training augmentations (docs/bring-your-own.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medsilo.data.base import Task
from medsilo.data.paths import anchored
from medsilo.data.sources import SITE_NAME_PATTERN, WindowConfig, check_unique_names

TASKS: tuple[str, ...] = get_args(Task)
#: Columns of the labels CSV with a fixed meaning.
FILE_COLUMN, LABEL_COLUMN, SPLIT_COLUMN = "file", "label", "split"
CLASS_TASKS = ("binary", "multiclass")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RotateStep(_Section):
    """``- rotate: 15``: a random rotation in ``[-15, 15]`` degrees (3-D: about the first axis)."""

    rotate: float = Field(gt=0, le=180)


#: One augmentation: ``flip`` (left-right, half the time), ``intensity`` (random scale in
#: [0.9, 1.1] and shift in [-0.1, 0.1]) or ``{rotate: degrees}``.
AugmentStep = Literal["flip", "intensity"] | RotateStep


class ImageSiteEntry(_Section):
    name: str = Field(pattern=SITE_NAME_PATTERN)
    folder: Path = Field(description="the site's image folder; the CSV's file paths are in it")
    labels: Path | None = Field(
        None, description="the labels CSV (default: labels.csv in the folder)"
    )
    masks: Path | None = Field(
        None, description="segmentation: the mask folder, same file names (default: masks/)"
    )

    @property
    def labels_path(self) -> Path:
        return self.labels if self.labels is not None else self.folder / "labels.csv"

    @property
    def masks_path(self) -> Path:
        return self.masks if self.masks is not None else self.folder / "masks"

    def anchored_at(self, folder: Path) -> ImageSiteEntry:
        """The entry with relative paths read from ``folder``."""
        update: dict[str, Path] = {"folder": anchored(self.folder, folder)}
        if self.labels is not None:
            update["labels"] = anchored(self.labels, folder)
        if self.masks is not None:
            update["masks"] = anchored(self.masks, folder)
        return self.model_copy(update=update)


class ImageSourceConfig(_Section):
    """``data.images``: per-site image folders, read item by item during training."""

    sites: list[ImageSiteEntry] = Field(min_length=1)
    task: Task
    classes: list[str] | None = Field(
        None,
        description="binary/multiclass: the class names (a label is a name or its index); "
        "multilabel: the label names, one 0/1 column each; segmentation: the mask's classes, "
        "background first (mask values are their indices)",
    )
    targets: list[str] | None = Field(
        None, description="regression: the value columns (default: one column named value)"
    )
    group_columns: list[str] = Field(
        default_factory=list, description="subgroup columns carried for per-subgroup metrics"
    )
    image_size: list[int] = Field(
        description="the model's input size: [H, W] for 2-D images, [D, H, W] for volumes"
    )
    channels: Literal[1, 3] = Field(1, description="1: grayscale, 3: RGB")
    intensity: Literal["scale", "standardize"] = Field(
        "scale",
        description="scale: to [0, 1] (8/16-bit by their range, DICOM by its window, other "
        "files by their min-max); standardize: each image to mean 0, std 1",
    )
    dicom_window: Literal["file", "minmax"] | WindowConfig = Field(
        "file", description="DICOM files: the window of the DICOM pipeline (docs/data-ingestion.md)"
    )
    augment: list[AugmentStep] = Field(
        default_factory=list, description="random augmentations of training items, in order"
    )
    test_fraction: float = Field(0.25, gt=0, lt=1)
    split_seed: int = Field(0, description="seed of each site's train/test split")
    report_dir: Path = Field(
        Path(".medsilo_cache/images"), description="each site's latest ingestion report"
    )

    @property
    def spatial_dims(self) -> int:
        return len(self.image_size)

    @property
    def label_names(self) -> list[str]:
        """Classes, labels or targets: what the model has one output per."""
        if self.task == "regression":
            return self.targets or ["value"]
        assert self.classes is not None  # guaranteed by the validator
        return self.classes

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def anchored_at(self, folder: Path) -> ImageSourceConfig:
        """The section with relative paths (the report folder's too) read from ``folder``."""
        sites = [s.anchored_at(folder) for s in self.sites]
        return self.model_copy(
            update={"sites": sites, "report_dir": anchored(self.report_dir, folder)}
        )

    @model_validator(mode="after")
    def _check(self) -> ImageSourceConfig:
        check_unique_names("data.images.sites", [s.name for s in self.sites])
        if len(self.image_size) not in (2, 3) or min(self.image_size) < 2:
            raise ValueError(
                f"data.images.image_size must be [H, W] or [D, H, W] with sides >= 2, got "
                f"{self.image_size}"
            )
        self._check_labels()
        reserved = {FILE_COLUMN, SPLIT_COLUMN, LABEL_COLUMN}
        columns = list(self.group_columns)
        if self.task in ("multilabel", "regression"):
            columns += self.label_names
        clash = sorted({c for c in columns if c in reserved or columns.count(c) > 1})
        if clash:
            raise ValueError(
                f"data.images: columns {clash} are repeated or reserved ({sorted(reserved)} "
                "have a fixed meaning in labels.csv)"
            )
        return self

    def _check_labels(self) -> None:
        where = f"data.images (task {self.task})"
        if self.task == "regression":
            if self.classes is not None:
                raise ValueError(f"{where}: name the value columns in targets, not classes")
            return
        if self.targets is not None:
            raise ValueError(f"{where}: targets are the value columns of task regression only")
        if self.classes is None:
            raise ValueError(
                f"{where} needs classes: the names every site shares (a deployed site sees "
                "only its own labels.csv, so the list cannot be read from the data)"
            )
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"{where}: classes has duplicates: {self.classes}")
        least = {"binary": 2, "multiclass": 2, "segmentation": 2, "multilabel": 1}[self.task]
        if len(self.classes) < least or (self.task == "binary" and len(self.classes) != 2):
            wanted = "exactly 2" if self.task == "binary" else f"at least {least}"
            raise ValueError(f"{where} needs {wanted} classes, got {self.classes}")
