"""The data-quality reports a run directory holds, for the report's "Data quality" section.

``run_experiment`` puts each site's report under ``RUN/data/``: the image (DICOM or image
folder) ingestion report
(``<site>_ingestion_report.{json,md}``: files seen, used, left out and why) and the tabular
validation report (``<site>_validation.json``: rows, missing shares, warnings). Results
without them hide what each site's data lost before training, so the report shows a
one-line summary per file and the file itself folded. Other ``.json`` / ``.md`` files
there (e.g. a site's DP data report copied in by hand) are shown as they are. A file that
cannot be read is listed with the reason instead of stopping the report.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medsilo.report.runs import RunResult

DATA_DIR = "data"
INGESTION_SUFFIX = "_ingestion_report"
VALIDATION_SUFFIX = "_validation"


@dataclass
class DataReport:
    """One report file (an ``.md`` twin of a ``.json`` is shown instead of the JSON)."""

    name: str
    summary: str
    text: str
    runs: list[str] = field(default_factory=list)


def data_reports(runs: Sequence[RunResult]) -> list[DataReport]:
    """The reports of every run; identical files of several runs (seeds of one config
    share their data) are listed once, naming the runs."""
    merged: dict[tuple[str, str], DataReport] = {}
    for run in runs:
        for report in _run_reports(run.path / DATA_DIR):
            key = (report.name, report.text)
            merged.setdefault(key, report).runs.append(run.name)
    return list(merged.values())


def _run_reports(folder: Path) -> list[DataReport]:
    if not folder.is_dir():
        return []
    stems: dict[str, None] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix in (".json", ".md"):
            stems.setdefault(path.stem, None)
    return [_report(folder, stem) for stem in stems]


def _report(folder: Path, stem: str) -> DataReport:
    json_path, md_path = folder / f"{stem}.json", folder / f"{stem}.md"
    try:
        markdown = md_path.read_text(encoding="utf-8") if md_path.is_file() else None
        raw = json.loads(json_path.read_text(encoding="utf-8")) if json_path.is_file() else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return DataReport(stem, f"unreadable: {err}", "")
    summary = _summary(stem, raw) if isinstance(raw, dict) else ""
    text = markdown if markdown is not None else json.dumps(raw, indent=2)
    return DataReport(stem, summary, text)


def _summary(stem: str, raw: dict[str, object]) -> str:
    if stem.endswith(INGESTION_SUFFIX):
        rejected = raw.get("rejected")
        left_out = len(rejected) if isinstance(rejected, list) else "?"
        return (
            f"image ingestion of site {raw.get('site')}: {raw.get('files_seen')} files seen, "
            f"{raw.get('usable')} usable, {left_out} left out"
        )
    if stem.endswith(VALIDATION_SUFFIX):
        issues, warnings = raw.get("issues"), raw.get("warnings")
        return (
            f"validation of site {raw.get('site')}: {raw.get('rows')} rows "
            f"({raw.get('unlabelled_rows')} unlabelled), "
            f"{len(issues) if isinstance(issues, list) else '?'} issues, "
            f"{len(warnings) if isinstance(warnings, list) else '?'} warnings"
        )
    return ""
