"""Render the self-contained HTML report (inline CSS, images by relative file name)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from medsilo import __version__
from medsilo.report.data_quality import DataReport, data_reports
from medsilo.report.plots import PlotFile
from medsilo.report.runs import RunResult, SuiteResult
from medsilo.report.seeds import group_by_config
from medsilo.report.table import (
    FLAGS,
    ResultsTable,
    build_config_table,
    build_table,
    format_value,
)

if TYPE_CHECKING:
    from medsilo.contribution.report_section import ContributionSection

TEMPLATE = "report.html"


@dataclass(frozen=True)
class _Cell:
    text: str
    best: bool
    classes: str


@dataclass(frozen=True)
class _Header:
    label: str
    numeric: bool


@dataclass(frozen=True)
class _Row:
    cells: list[_Cell]
    flagged: bool


@dataclass(frozen=True)
class _Table:
    columns: list[_Header]
    rows: list[_Row]
    has_loho: bool


@dataclass(frozen=True)
class _Folded:
    """The per-seed rows of one config, shown in a ``<details>`` under the results."""

    name: str
    table: _Table


@dataclass(frozen=True)
class _SiteTable:
    columns: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class _Config:
    name: str
    path: str
    text: str | None


def load_template() -> jinja2.Template:
    """The packaged ``templates/report.html``, with HTML autoescaping."""
    source = resources.files("medsilo.report").joinpath("templates", TEMPLATE).read_text("utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(source)


def _table_view(table: ResultsTable, mark_best: bool = True) -> _Table:
    """Cells as text; with ``mark_best``, the best value per column is bolded (off for the
    seeds of one config: bolding the luckiest seed is the comparison to avoid)."""
    best = {col.key: table.best_rows(col.key) if mark_best else set() for col in table.columns}
    rows: list[_Row] = []
    for i, row in enumerate(table.rows):
        cells = []
        for col in table.columns:
            numeric = col.kind != "text"
            is_best = i in best[col.key]
            classes = " ".join(
                c for c, on in (("num", numeric), ("best", is_best), (col.kind, True)) if on
            )
            if col.key == FLAGS:
                classes += " warning"
            cells.append(_Cell(format_value(col, row.get(col.key)), is_best, classes))
        rows.append(_Row(cells, bool(row.get(FLAGS))))
    headers = [_Header(col.label, col.kind != "text") for col in table.columns]
    has_loho = any(col.key == "loho_mean_accuracy" for col in table.columns)
    return _Table(headers, rows, has_loho)


def _fmt(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def _site_table(run: RunResult) -> _SiteTable | None:
    final = run.final_per_site
    loho = run.summary.loho or {}
    if not final and not loho:
        return None
    columns = ["Site", "Test n", "Final loss", "Final accuracy"]
    if loho:
        columns += ["LOHO accuracy", "LOHO loss"]
    rows = []
    for site in run.site_names:
        m = final.get(site)
        row = [
            site,
            _fmt(m.n if m else None),
            _fmt(m.loss if m else None, 4),
            _fmt(m.accuracy if m else None),
        ]
        if loho:
            lm = loho.get(site)
            row += [_fmt(lm.accuracy if lm else None), _fmt(lm.loss if lm else None, 4)]
        rows.append(row)
    return _SiteTable(columns, rows)


def _run_title(run: RunResult) -> str:
    """``"heart_fedavg: fedavg on heart_disease"``, or the name alone when unknown."""
    s = run.summary
    if s.algorithm and s.dataset:
        return f"{run.name}: {s.algorithm} on {s.dataset}"
    return run.name


def _run_meta(run: RunResult) -> list[tuple[str, str]]:
    s = run.summary
    items: list[tuple[str, str | int | float | None]] = [
        ("Algorithm", s.algorithm),
        ("Dataset", s.dataset),
        ("Seed", s.seed),
        ("Rounds", s.rounds if s.rounds is not None else len(run.rounds)),
        ("Wall time", f"{run.wall_s:.1f} s" if run.wall_s is not None else None),
    ]
    return [(label, str(value)) for label, value in items if value is not None]


def render_html(
    result: RunResult | SuiteResult,
    plots: Sequence[PlotFile],
    contribution: ContributionSection | None = None,
) -> str:
    """The report page as a string. ``plots`` are referenced by file name only, so the page
    must sit in the same folder as the PNGs."""
    folded: list[_Folded] = []
    if isinstance(result, SuiteResult):
        runs = result.runs
        title = result.title
        groups = group_by_config(runs)
        datasets = sorted({r.summary.dataset for r in runs if r.summary.dataset})
        seeds = sorted({r.summary.seed for r in runs if r.summary.seed is not None})
        meta = [("Configs", str(len(groups))), ("Runs", str(len(runs)))]
        if seeds:
            meta.append(("Seeds", ", ".join(str(s) for s in seeds)))
        if datasets:
            meta.append(("Dataset", ", ".join(datasets)))
        table = _table_view(build_config_table(groups))
        folded = [
            _Folded(g.name, _table_view(build_table(g.runs), mark_best=False))
            for g in groups
            if len(g.runs) > 1
        ]
        site_table = None
    else:
        runs = [result]
        title = _run_title(result)
        meta = _run_meta(result)
        table = _table_view(build_table(runs))
        site_table = _site_table(result)
    configs = [_Config(r.name, str(r.path), r.config_text) for r in runs]
    data_quality: list[DataReport] = data_reports(runs)
    return load_template().render(
        title=title,
        meta=meta,
        table=table,
        folded=folded,
        data_quality=data_quality,
        runs_count=len(runs),
        site_table=site_table,
        plots=list(plots),
        configs=configs,
        version=__version__,
        source=result.path.name,
        contribution=contribution,
    )


def write_html(
    result: RunResult | SuiteResult,
    plots: Sequence[PlotFile],
    path: Path,
    contribution: ContributionSection | None = None,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(result, plots, contribution), encoding="utf-8")
    return path
