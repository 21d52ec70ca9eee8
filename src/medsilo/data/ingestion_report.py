"""A site's ingestion report: files seen, used and left out (with the reason each was left out).

Site-held image data (``dataset: dicom`` and ``dataset: images``) is checked file by file
before any round; a file that cannot be used is listed here instead of stopping the
federation or being dropped silently. Each site's latest report is kept as
``<report folder>/<site>/ingestion_report.{json,md}`` and copied next to a run's results
(``RUN/data/<site>_ingestion_report.{json,md}``), which the run report summarises.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPORT_NAME = "ingestion_report"


@dataclass(frozen=True)
class Rejected:
    path: str
    reason: str


@dataclass
class IngestionReport:
    site: str
    folder: str
    labels: str
    files_seen: int = 0
    usable: int = 0
    modality: str = ""
    class_counts: dict[str, int] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    cache_key: str = ""
    from_cache: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(raw: dict[str, Any]) -> IngestionReport:
        rejected = [Rejected(**r) for r in raw.pop("rejected")]
        return IngestionReport(**raw, rejected=rejected)

    def to_markdown(self) -> str:
        lines = [
            f"# Ingestion report: site `{self.site}`",
            "",
            f"- folder: `{self.folder}`",
            f"- labels: `{self.labels}`",
            f"- files seen: {self.files_seen}; usable images: {self.usable}; "
            f"left out: {len(self.rejected)}",
            f"- modality: {self.modality or 'n/a'}",
            f"- class counts: {self.class_counts}",
            "",
        ]
        if self.rejected:
            lines += ["| path | reason |", "|---|---|"]
            lines += [f"| `{r.path}` | {r.reason} |" for r in self.rejected]
        else:
            lines.append("Every file was used.")
        return "\n".join(lines) + "\n"

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / f"{REPORT_NAME}.json", json.dumps(self.to_json(), indent=2))
        write_atomic(folder / f"{REPORT_NAME}.md", self.to_markdown())


def write_atomic(path: Path, text: str) -> None:
    """Temp file + rename: Flower workers of one machine may ingest the same site at once,
    and none of them must ever read half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def copy_ingestion_reports(report_dir: Path, sites: Iterable[str], dest: Path) -> list[Path]:
    """Put each site's latest ingestion report (``report_dir/<site>/``) next to a run's
    results (``dest/<site>_ingestion_report.{md,json}``), so a run shows what it left out."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for site in sites:
        for suffix in ("md", "json"):
            src = Path(report_dir) / site / f"{REPORT_NAME}.{suffix}"
            if src.is_file():
                target = dest / f"{site}_{REPORT_NAME}.{suffix}"
                target.write_text(src.read_text())
                written.append(target)
    return written
