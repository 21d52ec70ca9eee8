"""``dataset: dicom``: each site's DICOM folder tree + labels CSV -> cached tensors + a report.

Ingestion happens once, before any round: every file under the site's folder is decoded
(``medsilo.data.dicom``) and matched to the labels CSV. Files that cannot be used are listed in
the site's ingestion report with the reason, and left out; nothing is silently dropped and
nothing raises mid-round. Reasons: unreadable / not DICOM, no pixel data, not a single
grayscale frame, a modality different from the expected one (``modality`` in the config, or
the site's most common one), a file without a label, a label that is invalid, and a label row
whose file does not exist (or was unusable). A site with no usable image is refused.

The labels CSV itself must be sound, or the site is refused before anything is decoded: UTF-8
text with a header naming the entry's label column and its path (or SOPInstanceUID) column,
every row with the header's number of fields, each file listed once.

Cache: the decoded tensors and the report are stored in ``cache_dir/<site>/`` under a key
``sha256(version, folder, every file's (relative path, size, mtime_ns), the labels file's
content, the preprocessing settings)``; a second load with nothing changed reads the cache
and decodes nothing. The latest report is also written as ``ingestion_report.{json,md}``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from medsilo.data.base import ArrayData, DataFormatError, FederatedData, SiteData, concat_splits
from medsilo.data.dicom import DecodedImage, decode_file
from medsilo.data.ingestion_report import IngestionReport, Rejected, write_atomic
from medsilo.data.labels_csv import class_index, problems_message, read_csv_table
from medsilo.data.site_split import split_site
from medsilo.data.sources import DicomSiteEntry, DicomSourceConfig

CACHE_VERSION = 1
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Labels:
    by_key: dict[str, str]  # relative path or SOPInstanceUID -> raw label text
    column: str  # the labels CSV column the keys come from
    by_path: bool  # keys are relative paths (else SOPInstanceUIDs)


def _read_labels(entry: DicomSiteEntry) -> _Labels:
    path = Path(entry.labels)
    table = read_csv_table(entry.name, path)
    header = table.header
    by_path = entry.path_column in header
    key = entry.path_column if by_path else entry.uid_column
    if key not in header or entry.label_column not in header:
        raise DataFormatError(
            f"site {entry.name!r}: {path} needs a header with {entry.label_column!r} and "
            f"either {entry.path_column!r} (relative to {entry.folder}) or "
            f"{entry.uid_column!r}; found {header}. Other column names are set per site "
            "with label_column, path_column and uid_column"
        )
    key_at, label_at = header.index(key), header.index(entry.label_column)
    by_key: dict[str, str] = {}
    first_line: dict[str, int] = {}
    problems = list(table.problems)
    for line, cells in table.rows:
        name = Path(cells[key_at]).as_posix() if by_path and cells[key_at] else cells[key_at]
        if not name:
            problems.append(f"line {line} has an empty {key!r}")
        elif name in first_line:
            problems.append(f"{key} {name!r} is listed on lines {first_line[name]} and {line}")
        else:
            first_line[name] = line
            by_key[name] = cells[label_at]
    if problems:
        raise DataFormatError(
            problems_message(
                entry.name,
                path,
                problems,
                "quote a field that contains a comma; list each file once",
            )
        )
    return _Labels(by_key, key, by_path)


def _files(entry: DicomSiteEntry) -> list[Path]:
    folder = Path(entry.folder)
    if not folder.is_dir():
        raise DataFormatError(f"site {entry.name!r}: DICOM folder not found: {folder}")
    labels = Path(entry.labels).resolve()
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.resolve() != labels
    )


def cache_key(entry: DicomSiteEntry, files: list[Path], cfg: DicomSourceConfig) -> str:
    folder = Path(entry.folder)
    stats = []
    for p in files:
        st = p.stat()
        stats.append([p.relative_to(folder).as_posix(), st.st_size, st.st_mtime_ns])
    settings = cfg.model_dump(
        mode="json",
        include={"classes", "image_size", "window", "modality", "normalize_mean", "normalize_std"},
    )
    blob = json.dumps(
        {
            "version": CACHE_VERSION,
            "site": entry.name,
            "folder": str(folder.resolve()),
            "files": stats,
            "labels": hashlib.sha256(Path(entry.labels).read_bytes()).hexdigest(),
            "label_columns": [entry.path_column, entry.uid_column, entry.label_column],
            "settings": settings,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _decode_site(
    entry: DicomSiteEntry,
    files: list[Path],
    labels: _Labels,
    cfg: DicomSourceConfig,
    report: IngestionReport,
    on_file: Callable[[], None] | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    folder = Path(entry.folder)
    decoded: list[tuple[str, DecodedImage]] = []
    for p in files:
        if on_file is not None:
            on_file()
        rel = p.relative_to(folder).as_posix()
        out = decode_file(p, cfg)
        if isinstance(out, str):
            report.rejected.append(Rejected(rel, out))
        else:
            decoded.append((rel, out))
    modalities = Counter(img.modality for _, img in decoded)
    expected = cfg.modality or (modalities.most_common(1)[0][0] if modalities else "")
    report.modality = expected
    seen_keys: set[str] = set()
    xs: list[NDArray[np.float32]] = []
    ys: list[int] = []
    for rel, img in decoded:
        key = rel if labels.by_path else img.sop_instance_uid
        seen_keys.add(key)
        if img.modality != expected:
            report.rejected.append(
                Rejected(rel, f"modality {img.modality!r} differs from the site's {expected!r}")
            )
            continue
        if key not in labels.by_key:
            report.rejected.append(
                Rejected(
                    rel, f"no label for this file ({labels.column} {key!r} not in {entry.labels})"
                )
            )
            continue
        cls = class_index(labels.by_key[key], cfg.classes)
        if cls is None:
            report.rejected.append(
                Rejected(
                    rel,
                    f"label {labels.by_key[key]!r} is not one of the classes {cfg.classes} "
                    f"(or their index)",
                )
            )
            continue
        xs.append(img.pixels)
        ys.append(cls)
    decoded_keys = {rel for rel, _ in decoded} if labels.by_path else seen_keys
    rejected_paths = {r.path for r in report.rejected}
    for key in sorted(set(labels.by_key) - decoded_keys):
        if key in rejected_paths:
            continue  # the file exists and its own rejection already says why
        report.rejected.append(Rejected(key, f"listed in {entry.labels} but no such usable file"))
    size = cfg.image_size
    x = np.stack(xs)[:, None] if xs else np.zeros((0, 1, size, size), dtype=np.float32)
    return x.astype(np.float32), np.asarray(ys, dtype=np.int64)


def ingest_site(
    entry: DicomSiteEntry,
    cfg: DicomSourceConfig,
    on_start: Callable[[int], Callable[[], None]] | None = None,
) -> tuple[ArrayData, IngestionReport]:
    """All usable images of one site (N, 1, S, S) with labels, and the report.

    ``on_start(number of files)`` is called before decoding (not on a cache hit) and returns
    a per-file callback (a progress bar's advance).
    """
    files = _files(entry)
    labels = _read_labels(entry)
    key = cache_key(entry, files, cfg)
    site_cache = Path(cfg.cache_dir) / entry.name
    tensors, saved = site_cache / f"{key}.npz", site_cache / f"{key}.report.json"
    if tensors.is_file() and saved.is_file():
        with np.load(tensors, allow_pickle=False) as npz:
            x, y = np.asarray(npz["x"]), np.asarray(npz["y"])
        report = IngestionReport.from_json(json.loads(saved.read_text()))
        report.from_cache = True
    else:
        report = IngestionReport(
            entry.name, str(entry.folder), str(entry.labels), files_seen=len(files), cache_key=key
        )
        tick = on_start(len(files)) if on_start is not None else None
        x, y = _decode_site(entry, files, labels, cfg, report, tick)
        report.usable = len(y)
        report.class_counts = {c: int((y == i).sum()) for i, c in enumerate(cfg.classes)}
        site_cache.mkdir(parents=True, exist_ok=True)
        tmp = site_cache / f".{key}.{os.getpid()}.npz"
        np.savez(tmp, x=x, y=y)
        os.replace(tmp, tensors)  # atomic: a concurrent reader never sees half a file
        write_atomic(saved, json.dumps(report.to_json(), indent=2))
    report.write(site_cache)
    if report.rejected:
        log.warning(
            "site %s: %d file(s) left out, see %s",
            entry.name,
            len(report.rejected),
            site_cache / "ingestion_report.md",
        )
    if report.usable == 0:
        raise DataFormatError(
            f"site {entry.name!r}: none of the {report.files_seen} file(s) under {entry.folder} "
            f"is a usable labelled image; the reasons are in "
            f"{site_cache / 'ingestion_report.md'} (first: "
            f"{report.rejected[0].reason if report.rejected else 'no files'})"
        )
    return ArrayData(x.astype(np.float32), y.astype(np.int64)), report


def build_dicom_federation(cfg: DicomSourceConfig) -> tuple[FederatedData, list[IngestionReport]]:
    sites, reports = [], []
    for i, entry in enumerate(cfg.sites):
        data, report = ingest_site(entry, cfg)
        train, test = split_site(data.x, data.y, cfg.test_fraction, cfg.split_seed, i)
        sites.append(SiteData(entry.name, train, test))
        reports.append(report)
    num_classes = len(cfg.classes)
    fed = FederatedData(
        "dicom",
        sites,
        concat_splits([s.test for s in sites]),
        num_classes=num_classes,
        task="binary" if num_classes == 2 else "multiclass",
    )
    return fed, reports
