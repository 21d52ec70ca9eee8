"""``dataset: images``: each site's image folder + labels CSV -> streamed splits + a report.

Loading a site happens in two passes, so that a mistake in the config or a CSV stops the run
before anything is written, and no pixel is held:

1. Every site's labels CSV is read and checked (UTF-8, a ``file`` column and the task's label
   columns, one row per file, paths inside the site's folder, ``split`` values ``train`` or
   ``test``). A missing folder, a missing column or a malformed row is refused naming the
   site, the file and the line.
2. Every listed file is opened once (:func:`medsilo.data.image_files.probe`: exists, opens,
   its size readable and of the right number of dimensions); a segmentation mask is read
   once and must have its image's shape and only the configured classes. As with DICOM
   (``dataset: dicom``), a file that cannot be used is left out and listed with the reason in
   the site's ingestion report (``report_dir/<site>/ingestion_report.{json,md}``, copied to
   ``RUN/data/``): a listed file that does not exist, an unreadable image, a mask whose shape
   differs from its image's, an invalid label, an image file in the folder that the CSV does
   not list. A site with no usable image is refused.

Each site's train/test split is the CSV's ``split`` column, or else seeded by
``(split_seed, site index)`` (stratified by class for binary and multiclass), like DICOM's.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from numpy.typing import NDArray

from medsilo.data.base import DataFormatError, FederatedData, SiteData, StreamedSplit, concat_splits
from medsilo.data.image_config import (
    CLASS_TASKS,
    FILE_COLUMN,
    LABEL_COLUMN,
    SPLIT_COLUMN,
    ImageSiteEntry,
    ImageSourceConfig,
)
from medsilo.data.image_files import file_kind, probe, read_mask
from medsilo.data.image_items import ImageItem, ImageItems, dicom_reading
from medsilo.data.ingestion_report import IngestionReport, Rejected
from medsilo.data.labels_csv import class_index, problems_message, read_csv_table
from medsilo.data.site_split import stratified_split

log = logging.getLogger(__name__)
SPLITS = ("train", "test")


@dataclass(frozen=True)
class LabelRow:
    """One row of a labels CSV: the file (relative to the folder) and its other cells."""

    line: int
    file: str
    cells: dict[str, str]


@dataclass(frozen=True)
class LabelsTable:
    site: ImageSiteEntry
    rows: list[LabelRow]
    has_split: bool


def _required_columns(cfg: ImageSourceConfig) -> list[str]:
    if cfg.task in CLASS_TASKS:
        labels = [LABEL_COLUMN]
    elif cfg.task in ("multilabel", "regression"):
        labels = cfg.label_names
    else:
        labels = []
    return [FILE_COLUMN, *labels, *cfg.group_columns]


def read_labels_table(entry: ImageSiteEntry, cfg: ImageSourceConfig) -> LabelsTable:
    """Site ``entry``'s labels CSV, checked (module docstring, pass 1); nothing is opened but
    the CSV and the folders."""
    if not entry.folder.is_dir():
        raise DataFormatError(f"site {entry.name!r}: image folder not found: {entry.folder}")
    if cfg.task == "segmentation" and not entry.masks_path.is_dir():
        raise DataFormatError(
            f"site {entry.name!r}: mask folder not found: {entry.masks_path} (segmentation "
            "needs one mask per image, with the image's file name)"
        )
    path = entry.labels_path
    table = read_csv_table(entry.name, path)
    missing = [c for c in _required_columns(cfg) if c not in table.header]
    if missing:
        raise DataFormatError(
            f"site {entry.name!r}: {path} lacks column(s) {missing} (task {cfg.task}); "
            f"found {table.header}. It needs {_required_columns(cfg)} and optionally "
            f"{SPLIT_COLUMN!r} (train/test)"
        )
    problems = list(table.problems)
    rows: list[LabelRow] = []
    first_line: dict[str, int] = {}
    for line, cells in table.rows:
        named = dict(zip(table.header, cells, strict=True))
        problem = _row_problem(named, line, first_line)
        if problem is not None:
            problems.append(problem)
            continue
        file = PurePosixPath(Path(named[FILE_COLUMN]).as_posix()).as_posix()
        first_line[file] = line
        rows.append(LabelRow(line, file, named))
    if problems:
        hint = "quote a field that contains a comma; list each file once, inside the folder"
        raise DataFormatError(problems_message(entry.name, path, problems, hint))
    return LabelsTable(entry, rows, SPLIT_COLUMN in table.header)


def _row_problem(named: dict[str, str], line: int, first_line: dict[str, int]) -> str | None:
    file = named[FILE_COLUMN]
    parts = PurePosixPath(Path(file).as_posix()).parts
    if not file:
        return f"line {line} has an empty {FILE_COLUMN!r}"
    if Path(file).is_absolute() or ".." in parts:
        return f"line {line}: {file!r} must be a path inside the site's folder"
    posix = PurePosixPath(*parts).as_posix()
    if posix in first_line:
        return f"file {posix!r} is listed on lines {first_line[posix]} and {line}"
    split = named.get(SPLIT_COLUMN)
    if split is not None and split not in SPLITS:
        return f"line {line}: split {split!r} must be one of {list(SPLITS)}"
    return None


def _label(row: LabelRow, cfg: ImageSourceConfig) -> int | tuple[float, ...] | str:
    """The row's label, or why it is invalid."""
    if cfg.task in CLASS_TASKS:
        text = row.cells[LABEL_COLUMN]
        index = class_index(text, cfg.label_names)
        if index is None:
            return f"label {text!r} is not one of the classes {cfg.label_names} (or their index)"
        return index
    if cfg.task == "multilabel":
        bad = [c for c in cfg.label_names if row.cells[c] not in ("0", "1")]
        if bad:
            return f"labels {bad} must be 0 or 1, got {[row.cells[c] for c in bad]}"
        return tuple(float(row.cells[c]) for c in cfg.label_names)
    if cfg.task == "regression":
        values: list[float] = []
        for column in cfg.label_names:
            try:
                value = float(row.cells[column])
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                return f"{column} {row.cells[column]!r} is not a finite number"
            values.append(value)
        return tuple(values)
    return 0  # segmentation: the mask is the label


def _mask_problem(
    image_shape: tuple[int, ...], mask_path: Path, rel: str, cfg: ImageSourceConfig
) -> str | None:
    mask = read_mask(mask_path)
    if isinstance(mask, str):
        return f"mask {rel}: {mask}"
    if tuple(mask.shape) != image_shape:
        return f"mask {rel} has shape {tuple(mask.shape)}, its image {image_shape}"
    low, high = int(mask.min()), int(mask.max())
    if low < 0 or high >= cfg.num_classes:
        return (
            f"mask {rel} holds values {low}..{high}; the classes {cfg.label_names} are "
            f"0..{cfg.num_classes - 1}"
        )
    return None


@dataclass
class CheckedSite:
    """A site's usable items (with their CSV rows), and its report."""

    items: list[ImageItem] = field(default_factory=list)
    rows: list[LabelRow] = field(default_factory=list)
    report: IngestionReport | None = None


def check_files(table: LabelsTable, cfg: ImageSourceConfig) -> CheckedSite:
    """Open every listed file once (module docstring, pass 2); pixels are not kept."""
    entry = table.site
    report = IngestionReport(entry.name, str(entry.folder), str(entry.labels_path))
    checked = CheckedSite(report=report)
    dicom = dicom_reading(cfg)
    for row in table.rows:
        path = entry.folder / row.file
        shape = probe(path, cfg.spatial_dims, dicom)
        label = _label(row, cfg)
        reason = shape if isinstance(shape, str) else label if isinstance(label, str) else None
        mask = None
        if reason is None and cfg.task == "segmentation":
            assert not isinstance(shape, str)
            mask = entry.masks_path / row.file
            reason = _mask_problem(shape, mask, f"{entry.masks_path.name}/{row.file}", cfg)
        if reason is not None:
            report.rejected.append(Rejected(row.file, reason))
            continue
        assert not isinstance(label, str)
        checked.items.append(ImageItem(path, label, mask))
        checked.rows.append(row)
    unlisted = _unlisted_images(entry, {row.file for row in table.rows})
    report.rejected += [Rejected(f, f"not listed in {entry.labels_path}") for f in unlisted]
    report.files_seen = len(table.rows) + len(unlisted)
    report.usable = len(checked.items)
    report.class_counts = _counts(checked.items, cfg)
    return checked


def _unlisted_images(entry: ImageSiteEntry, listed: set[str]) -> list[str]:
    masks = entry.masks_path.resolve()
    found = []
    for path in entry.folder.rglob("*"):
        rel = path.relative_to(entry.folder)
        if (
            path.is_file()
            and file_kind(path) is not None
            and not any(part.startswith(".") for part in rel.parts)
            and not path.resolve().is_relative_to(masks)
            and rel.as_posix() not in listed
        ):
            found.append(rel.as_posix())
    return sorted(found)


def _counts(items: list[ImageItem], cfg: ImageSourceConfig) -> dict[str, int]:
    if cfg.task in CLASS_TASKS:
        y = np.asarray([i.label for i in items], dtype=np.int64)
        return {c: int((y == k).sum()) for k, c in enumerate(cfg.label_names)}
    if cfg.task == "multilabel":
        positives = np.asarray([i.label for i in items]).reshape(len(items), -1).sum(axis=0)
        return {c: int(positives[k]) if items else 0 for k, c in enumerate(cfg.label_names)}
    return {}


def _split_indices(
    checked: CheckedSite, table: LabelsTable, cfg: ImageSourceConfig, index: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    if table.has_split:
        where = np.asarray([r.cells[SPLIT_COLUMN] for r in checked.rows])
        return (
            np.flatnonzero(where == "train").astype(np.int64),
            np.flatnonzero(where == "test").astype(np.int64),
        )
    strata = (
        np.asarray([i.label for i in checked.items], dtype=np.int64)
        if cfg.task in CLASS_TASKS
        else np.zeros(len(checked.items), dtype=np.int64)
    )
    return stratified_split(strata, cfg.test_fraction, cfg.split_seed, index)


def _split(
    checked: CheckedSite, indices: NDArray[np.int64], cfg: ImageSourceConfig, train: bool
) -> StreamedSplit:
    items = [checked.items[i] for i in indices]
    labels = (
        np.asarray([i.label for i in items], dtype=np.int64) if cfg.task in CLASS_TASKS else None
    )
    groups = {
        g: np.asarray([checked.rows[i].cells[g] for i in indices], dtype=np.str_)
        for g in cfg.group_columns
    }
    return StreamedSplit(ImageItems(items, cfg, augment=train), labels, groups)


def site_data(table: LabelsTable, cfg: ImageSourceConfig, index: int) -> SiteData:
    """Site ``index``'s streamed train and test splits; its report is written first."""
    checked = check_files(table, cfg)
    report = checked.report
    assert report is not None
    folder = cfg.report_dir / table.site.name
    report.write(folder)
    name = table.site.name
    if report.rejected:
        log.warning(
            "site %s: %d file(s) left out, see %s",
            *(name, len(report.rejected), folder / "ingestion_report.md"),
        )
    if report.usable == 0:
        first = report.rejected[0].reason if report.rejected else "no files listed"
        raise DataFormatError(
            f"site {name!r}: none of the {report.files_seen} file(s) of {table.site.folder} "
            f"is a usable labelled image; the reasons are in {folder / 'ingestion_report.md'} "
            f"(first: {first})"
        )
    train, test = _split_indices(checked, table, cfg, index)
    if len(train) == 0:
        raise DataFormatError(f"site {name!r} has no usable training image (split column)")
    return SiteData(name, _split(checked, train, cfg, True), _split(checked, test, cfg, False))


def build_image_federation(cfg: ImageSourceConfig) -> FederatedData:
    """Every site's folder as streamed splits; every CSV is checked before any file is."""
    tables = [read_labels_table(entry, cfg) for entry in cfg.sites]
    sites = [site_data(table, cfg, i) for i, table in enumerate(tables)]
    return federation_of(sites, cfg)


def federation_of(sites: list[SiteData], cfg: ImageSourceConfig) -> FederatedData:
    """``sites`` as a federation whose pooled test set is their test sets together."""
    return FederatedData(
        "images",
        sites,
        concat_splits([s.test for s in sites]),
        num_classes=cfg.num_classes,
        task=cfg.task,
    )
