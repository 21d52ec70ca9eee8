"""Validate one site's CSV against the federation schema through its mapping.

Everything a site can get wrong is collected, not raised one at a time: a mapping naming a
column the CSV lacks, a unit that cannot be converted, text in a numeric column, values
outside the allowed range, unknown category codes, too many missing values. Each problem is an
:class:`Issue` naming the schema column, the local column and what to fix, and the per-column
statistics (missing share, out-of-range count and unknown codes with example line numbers)
go in the report that ``medsilo site check`` prints. Line numbers are the CSV file's (the
header is line 1; a file read with given ``columns`` has no header, its first row is line 1).

Binary columns take 0/1 (also written 0.0/1.0) and, case-insensitively, true/false and yes/no
(:data:`BINARY_SPELLINGS`), after the mapping's own ``codes``.

The same check runs before training; a site with any issue is refused (see
``medsilo.data.tabular_sites``). The values that pass come back converted to schema units,
with categorical codes as indices into the schema's code list (NaN = missing).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medsilo.data.schema import FederationSchema, SchemaColumn
from medsilo.data.site_mapping import ColumnMapping, SiteMapping
from medsilo.data.units import UnitError, compatible_units, converter

MAX_EXAMPLES = 5
HINT_MIN_IN_RANGE = 0.95  # a unit suggestion must put this share of values in range
FILE = "<file>"  # Issue.column of a problem with the file as a whole
BINARY_CODES = ["0", "1"]
#: Spellings of a binary column's codes accepted besides 0/1 (matched case-insensitively).
BINARY_SPELLINGS: dict[str, str] = {"false": "0", "no": "0", "true": "1", "yes": "1"}


@dataclass(frozen=True)
class Issue:
    column: str
    local: str | None
    problem: str
    fix: str

    @property
    def where(self) -> str:
        if self.column == FILE:
            return "file"
        renamed = self.local and self.local != self.column
        return f"column {self.column!r}" + (f" (local {self.local!r})" if renamed else "")

    def text(self) -> str:
        return f"{self.where}: {self.problem}. Fix: {self.fix}"


@dataclass
class ColumnCheck:
    column: str
    type: str
    local: str | None = None
    conversion: str = ""
    rows: int = 0
    missing: int = 0
    out_of_range: int = 0
    out_of_range_examples: list[str] = field(default_factory=list)
    type_errors: int = 0
    unknown: dict[str, int] = field(default_factory=dict)
    unknown_examples: list[str] = field(default_factory=list)
    status: str = "ok"

    @property
    def missing_share(self) -> float:
        return self.missing / self.rows if self.rows else 0.0


@dataclass
class SiteCheck:
    """The validation report of one site; ``values`` is None when the data cannot be used."""

    site: str
    csv: str
    schema: str
    rows: int = 0
    unlabelled_rows: int = 0
    columns: list[ColumnCheck] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    values: dict[str, NDArray[np.float64]] | None = None
    labels: NDArray[np.int64] | None = None

    @property
    def ok(self) -> bool:
        return not self.issues

    def message(self) -> str:
        """Why the site is refused, one line per issue, each ending with what to fix."""
        head = (
            f"site {self.site!r} ({self.csv}) fails the federation schema {self.schema!r} "
            f"with {len(self.issues)} issue(s):"
        )
        return "\n".join([head, *[f"  - {i.text()}" for i in self.issues]])

    def to_json(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "csv": self.csv,
            "schema": self.schema,
            "ok": self.ok,
            "rows": self.rows,
            "unlabelled_rows": self.unlabelled_rows,
            "ignored_columns": self.ignored_columns,
            "issues": [i.__dict__ | {"message": i.text()} for i in self.issues],
            "warnings": self.warnings,
            "columns": [
                {k: v for k, v in c.__dict__.items()} | {"missing_share": c.missing_share}
                for c in self.columns
            ],
        }


@dataclass
class SiteTable:
    """A site's rows as text cells under local column names; ``lines`` names each row where
    a message points at it (``line 5`` of a CSV, a FHIR patient)."""

    header: list[str]
    rows: list[list[str]]
    lines: list[str]


def _read_csv(path: Path, check: SiteCheck, columns: Sequence[str] | None) -> SiteTable | None:
    """The rows of ``path``; with ``columns`` the file has no header row and those are its
    column names."""
    if not path.is_file():
        check.issues.append(Issue(FILE, None, f"CSV not found: {path}", "fix the csv path"))
        return None
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        check.issues.append(
            Issue(FILE, None, f"{path} is not UTF-8 text ({err})", "export the CSV as UTF-8")
        )
        return None
    reader = csv.reader(text.splitlines())
    header = list(columns) if columns is not None else next(reader, None)
    if not header:
        check.issues.append(Issue(FILE, None, f"{path} is empty", "export a header row"))
        return None
    header = [h.strip() for h in header]
    rows, lines, ragged = [], [], []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            ragged.append(f"line {reader.line_num} has {len(row)}")
            continue
        rows.append([cell.strip() for cell in row])
        lines.append(f"line {reader.line_num}")
    if ragged:
        check.issues.append(
            Issue(
                FILE,
                None,
                f"{len(ragged)} row(s) do not have the {len(header)} fields "
                f"({', '.join(header)}), e.g. {'; '.join(ragged[:MAX_EXAMPLES])}",
                "quote fields that contain commas, or remove the broken rows",
            )
        )
    return SiteTable(header, rows, lines)


def _check_mapping(
    schema: FederationSchema, mapping: SiteMapping, data: SiteTable, check: SiteCheck
) -> dict[str, str]:
    """Structural problems of the mapping; returns schema column -> local column for the
    mappings that can be used."""
    targets = [*schema.column_names, schema.label.name]
    used: dict[str, str] = {}
    for local, m in mapping.columns.items():
        if m.to not in targets:
            check.issues.append(
                Issue(
                    m.to,
                    local,
                    f"the mapping sends local column {local!r} to {m.to!r}, which the schema "
                    "does not have",
                    f"use one of the schema columns {targets}",
                )
            )
            continue
        if m.to in used:
            check.issues.append(
                Issue(
                    m.to,
                    local,
                    f"local columns {used[m.to]!r} and {local!r} both map to {m.to!r}",
                    "map exactly one local column to each schema column",
                )
            )
            continue
        if local not in data.header:
            check.issues.append(
                Issue(
                    m.to,
                    local,
                    f"the mapping names local column {local!r} but the CSV has no such column "
                    f"(its columns: {data.header})",
                    "use the CSV header's exact name as the mapping key",
                )
            )
            continue
        used[m.to] = local
    for col in schema.columns:
        if col.required and col.name not in used and mapping.local_for(col.name) is None:
            check.issues.append(
                Issue(
                    col.name,
                    None,
                    "this required schema column is not mapped from any local column",
                    f"add `<local column>: {{to: {col.name}}}` to the site's mapping",
                )
            )
    if schema.label.name not in used and mapping.local_for(schema.label.name) is None:
        check.issues.append(
            Issue(
                schema.label.name,
                None,
                "the label column is not mapped",
                f"add `<local label column>: {{to: {schema.label.name}}}` to the mapping",
            )
        )
    check.ignored_columns = [h for h in data.header if h not in mapping.columns]
    return used


def _codes_problem(m: ColumnMapping, allowed: list[str], column: str, local: str) -> Issue | None:
    if m.codes is None:
        return None
    bad = sorted({v for v in m.codes.values() if v not in allowed})
    if bad:
        return Issue(
            column,
            local,
            f"the mapping's codes send local values to {bad}, which are not schema codes",
            f"map local codes onto the schema codes {allowed}",
        )
    return None


def _as_codes(
    raw: list[str | None],
    m: ColumnMapping,
    allowed: list[str],
    out: ColumnCheck,
    lines: list[str],
    spellings: dict[str, str] | None = None,
) -> NDArray[np.float64]:
    """Index of each value's schema code (NaN when missing); unknown codes are counted, with
    example lines. ``spellings`` (lower case) are tried after the mapping's codes."""
    index = {c: i for i, c in enumerate(allowed)}
    values = np.full(len(raw), math.nan)
    for i, text in enumerate(raw):
        if text is None:
            continue
        code = m.codes.get(text, text) if m.codes else text
        if code not in index and spellings:
            code = spellings.get(code.lower(), code)
        if code not in index:
            try:  # "1.0" is the code "1"
                as_num = float(code)
                code = str(int(as_num)) if as_num.is_integer() else code
            except ValueError:
                pass
        if code in index:
            values[i] = index[code]
        else:
            out.unknown[text] = out.unknown.get(text, 0) + 1
            if len(out.unknown_examples) < MAX_EXAMPLES:
                out.unknown_examples.append(f"{lines[i]}: {text!r}")
    return values


def _unit_hint(
    raw: NDArray[np.float64], col: SchemaColumn, declared: str, local: str
) -> str | None:
    lo, hi = col.bounds
    assert col.unit is not None
    best: tuple[float, str] | None = None
    for unit in compatible_units(col.unit, col.analyte):
        if unit.lower() == declared.lower():
            continue
        conv = converter(unit, col.unit, col.analyte)(raw)
        share = float(np.mean((conv >= lo) & (conv <= hi)))
        if share >= HINT_MIN_IN_RANGE and (best is None or share > best[0]):
            best = (share, unit)
    if best is None:
        return None
    return (
        f"the values fit the range if read as {best[1]!r} ({best[0]:.0%} in range): set "
        f"`unit: {best[1]}` for {local!r} in the mapping if that is the unit the site exports"
    )


def _numeric(
    raw: list[str | None],
    col: SchemaColumn,
    m: ColumnMapping,
    local: str,
    lines: list[str],
    schema: FederationSchema,
    out: ColumnCheck,
    check: SiteCheck,
) -> NDArray[np.float64]:
    values = np.full(len(raw), math.nan)
    bad_text: list[str] = []
    for i, text in enumerate(raw):
        if text is None:
            continue
        try:
            v = float(text)
        except ValueError:
            v = math.nan
        if not math.isfinite(v):
            out.type_errors += 1
            bad_text.append(f"{lines[i]}: {text!r}")
            continue
        values[i] = v
    if out.type_errors:
        check.issues.append(
            Issue(
                col.name,
                local,
                f"{out.type_errors} value(s) are not numbers, e.g. {bad_text[:MAX_EXAMPLES]}",
                "export plain numbers (no units or text in the cell) or leave the cell empty",
            )
        )
    assert col.unit is not None
    source = m.unit or col.unit
    try:
        convert = converter(source, col.unit, col.analyte)
    except UnitError as err:
        choices = compatible_units(col.unit, col.analyte)
        check.issues.append(
            Issue(
                col.name,
                local,
                f"local unit {source!r} cannot be converted to the schema unit {col.unit!r}: {err}",
                f"set the mapping's `unit` for {local!r} to the unit the site exports, one of "
                f"{choices}",
            )
        )
        out.status = "error"
        return np.full(len(raw), math.nan)
    out.conversion = col.unit if source.lower() == col.unit.lower() else f"{source} -> {col.unit}"
    converted = convert(values)
    lo, hi = col.bounds
    observed = ~np.isnan(converted)
    outside = observed & ((converted < lo) | (converted > hi))
    out.out_of_range = int(outside.sum())
    for i in np.flatnonzero(outside)[:MAX_EXAMPLES]:
        shown = f"{values[i]:g} {source}" + (
            f" = {converted[i]:g} {col.unit}" if out.conversion != col.unit else ""
        )
        out.out_of_range_examples.append(f"{lines[i]}: {shown}")
    share = out.out_of_range / max(int(observed.sum()), 1)
    if out.out_of_range and share > schema.max_out_of_range:
        hint = _unit_hint(values[observed], col, source, local)
        fix = hint or (
            f"correct or blank these cells at the source, or check the mapping's unit "
            f"(now {source!r})"
        )
        check.issues.append(
            Issue(
                col.name,
                local,
                f"{out.out_of_range} of {int(observed.sum())} values ({share:.0%}) are outside "
                f"the allowed range [{lo:g}, {hi:g}] {col.unit}, e.g. "
                f"{out.out_of_range_examples}",
                fix,
            )
        )
    elif out.out_of_range:
        check.warnings.append(
            f"column {col.name!r}: {out.out_of_range} out-of-range value(s) treated as missing "
            f"(within max_out_of_range={schema.max_out_of_range})"
        )
        converted[outside] = math.nan
    return converted


def check_site(
    schema: FederationSchema,
    mapping: SiteMapping,
    csv_path: Path,
    site: str | None = None,
    columns: Sequence[str] | None = None,
) -> SiteCheck:
    """Validate ``csv_path`` through ``mapping``; never raises for problems in the data.

    ``columns`` names the columns of a file without a header row (the bundled UCI heart
    files); by default the first row is the header.
    """
    name = site or mapping.site or Path(csv_path).stem
    check = SiteCheck(site=name, csv=str(csv_path), schema=schema.name)
    data = _read_csv(Path(csv_path), check, columns)
    if data is None:
        return check
    return check_table(schema, mapping, data, check)


def check_table(
    schema: FederationSchema, mapping: SiteMapping, data: SiteTable, check: SiteCheck
) -> SiteCheck:
    """Validate rows already read (a CSV's, or a FHIR site's patients as text cells) into
    ``check``, which may hold issues found while reading; never raises for the data."""
    used = _check_mapping(schema, mapping, data, check)
    missing_tokens = set(mapping.missing_values)

    def cells(local: str) -> list[str | None]:
        j = data.header.index(local)
        return [None if r[j] in missing_tokens else r[j] for r in data.rows]

    # Label first: rows without one are dropped before anything else is counted.
    keep = np.ones(len(data.rows), dtype=bool)
    labels = np.zeros(len(data.rows), dtype=np.int64)
    label_local = used.get(schema.label.name)
    if label_local is not None:
        m = mapping.columns[label_local]
        lab = ColumnCheck(schema.label.name, "label", local=label_local, rows=len(data.rows))
        problem = _codes_problem(m, schema.label.classes, schema.label.name, label_local)
        if problem:
            check.issues.append(problem)
        raw = cells(label_local)
        idx = _as_codes(raw, m, schema.label.classes, lab, data.lines)
        lab.missing = int(np.isnan(idx).sum()) - sum(lab.unknown.values())
        keep = ~np.isnan(idx)
        labels = np.where(keep, idx, 0).astype(np.int64)
        if lab.unknown:
            lab.status = "error"
            check.issues.append(
                _unknown_issue(schema.label.name, label_local, lab, schema.label.classes, m)
            )
        check.unlabelled_rows = lab.missing
        check.columns.append(lab)
        if check.unlabelled_rows:
            check.warnings.append(f"{check.unlabelled_rows} row(s) without a label are dropped")
    lines = [ln for ln, k in zip(data.lines, keep, strict=True) if k]
    check.rows = len(lines)
    if label_local is not None and check.rows == 0:
        check.issues.append(
            Issue(schema.label.name, label_local, "no row has a usable label", "export labels")
        )
    values: dict[str, NDArray[np.float64]] = {}
    for col in schema.columns:
        local = used.get(col.name)
        out = ColumnCheck(col.name, col.type, local=local, rows=check.rows)
        check.columns.append(out)
        if local is None:
            out.status = "unmapped"
            out.missing = check.rows
            values[col.name] = np.full(check.rows, math.nan)
            continue
        m = mapping.columns[local]
        raw = [c for c, k in zip(cells(local), keep, strict=True) if k]
        out.missing = sum(c is None for c in raw)
        before = len(check.issues)
        if col.type == "numeric" and m.codes is not None:
            check.issues.append(
                Issue(
                    col.name,
                    local,
                    "`codes` given for a numeric column",
                    "remove `codes`; give `unit` instead",
                )
            )
        if col.type != "numeric" and m.unit is not None:
            check.issues.append(
                Issue(
                    col.name,
                    local,
                    f"`unit` given for a {col.type} column",
                    "remove `unit` (units apply to numeric columns)",
                )
            )
        if col.type == "numeric":
            values[col.name] = _numeric(raw, col, m, local, lines, schema, out, check)
        else:
            binary = col.type == "binary"
            allowed = BINARY_CODES if binary else col.codes
            assert allowed is not None
            problem = _codes_problem(m, allowed, col.name, local)
            if problem:
                check.issues.append(problem)
            spellings = BINARY_SPELLINGS if binary else None
            values[col.name] = _as_codes(raw, m, allowed, out, lines, spellings)
            if out.unknown:
                check.issues.append(_unknown_issue(col.name, local, out, allowed, m))
        if col.required and out.missing_share > schema.max_missing:
            check.issues.append(
                Issue(
                    col.name,
                    local,
                    f"{out.missing} of {out.rows} values ({out.missing_share:.0%}) are missing; "
                    f"the schema allows at most {schema.max_missing:.0%} for a required column",
                    "fill the gaps at the source, or check `missing_values` in the mapping",
                )
            )
        if len(check.issues) > before:
            out.status = "error"
    if check.ok:
        check.values = values
        check.labels = labels[keep]
    return check


def _unknown_issue(
    column: str, local: str, out: ColumnCheck, allowed: list[str], m: ColumnMapping
) -> Issue:
    shown = dict(sorted(out.unknown.items(), key=lambda kv: -kv[1])[:MAX_EXAMPLES])
    how = "extend the mapping's `codes`" if m.codes else "add `codes:` to the mapping"
    return Issue(
        column,
        local,
        f"{sum(out.unknown.values())} value(s) are not known codes (value: count) {shown}, "
        f"e.g. {out.unknown_examples}; schema codes are {allowed}",
        f"{how} so that every local value maps to one of {allowed}",
    )
