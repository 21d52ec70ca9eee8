"""Reading a site's labels CSV safely: UTF-8 text, no binary file, class names or indices.

Shared by the site-held image sources (``dataset: dicom`` and ``dataset: images``), whose
labels CSVs are exported by hand at each hospital: a wrong encoding or a binary file named
``labels.csv`` must be refused with a message naming the file, not with a decoding error.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from medsilo.data.base import DataFormatError

MAX_SHOWN = 5  # malformed label rows quoted in a refusal


def labels_text(site: str, path: Path) -> str:
    """The text of site ``site``'s labels file ``path``, or a refusal naming the file."""
    if not path.is_file():
        raise DataFormatError(f"site {site!r}: labels file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataFormatError(
            f"site {site!r}: labels file {path} is not UTF-8 text (byte {err.start}: "
            f"{err.reason}); it must be a CSV file, exported as UTF-8"
        ) from None
    if "\0" in text:
        raise DataFormatError(
            f"site {site!r}: labels file {path} holds NUL bytes: a binary file, not a CSV"
        )
    return text


def class_index(text: str, classes: list[str]) -> int | None:
    """The index of label ``text``: a class name, or the index itself; None if neither."""
    if text in classes:
        return classes.index(text)
    if text.isdigit() and int(text) < len(classes):
        return int(text)
    return None


def problems_message(site: str, path: Path, problems: list[str], hint: str) -> str:
    """A refusal listing the first :data:`MAX_SHOWN` malformed rows of a labels file."""
    shown = "\n".join(f"  - {p}" for p in problems[:MAX_SHOWN])
    more = f"\n  ... and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
    return (
        f"site {site!r}: labels file {path} has {len(problems)} malformed row(s) "
        f"({hint}):\n{shown}{more}"
    )


@dataclass(frozen=True)
class CsvTable:
    """A labels CSV's header (stripped), its rows with the header's number of fields (with
    their line numbers, cells stripped; blank rows skipped) and what is wrong with the others."""

    header: list[str]
    rows: list[tuple[int, list[str]]]
    problems: list[str]


def read_csv_table(site: str, path: Path) -> CsvTable:
    """Site ``site``'s labels file ``path`` as a table, or a refusal naming the file and line."""
    reader = csv.reader(io.StringIO(labels_text(site, path), newline=""))
    rows: list[tuple[int, list[str]]] = []
    problems: list[str] = []
    try:
        header = [h.strip() for h in next(reader, [])]
        for row in reader:
            cells = [c.strip() for c in row]
            if not any(cells):
                continue
            if len(cells) != len(header):
                line = reader.line_num
                problems.append(f"line {line} has {len(cells)} fields, the header {len(header)}")
            else:
                rows.append((reader.line_num, cells))
    except csv.Error as err:
        raise DataFormatError(
            f"site {site!r}: labels file {path}, line {reader.line_num}: not a valid CSV ({err})"
        ) from None
    return CsvTable(header, rows, problems)
