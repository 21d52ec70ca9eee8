"""Reports of finished runs: PNG charts and a self-contained HTML page.

``build_report(path)`` accepts a *run directory* (``summary.json``, ``rounds.jsonl``,
``config.yaml``) or a *suite directory* (run directories as subfolders, optionally a
``suite.json`` giving title and order) and writes ``report.html`` plus the PNGs it
references into ``path / "report"`` (or ``out_dir``). ``results_table(path)`` gives the same
results table as plain rows, for the CLI.
"""

from __future__ import annotations

from pathlib import Path

from medsilo.report.html import write_html
from medsilo.report.plots import PlotFile, write_plots
from medsilo.report.runs import (
    ReportError,
    RunResult,
    RunSummary,
    SuiteResult,
    load,
    load_run,
    load_suite,
)
from medsilo.report.table import Column, ResultsTable, build_table, format_value
from medsilo.runtime.round_record import EvalMetrics, RoundRecord

REPORT_DIR = "report"
REPORT_FILE = "report.html"

__all__ = [
    "Column",
    "EvalMetrics",
    "PlotFile",
    "ReportError",
    "ResultsTable",
    "RoundRecord",
    "RunResult",
    "RunSummary",
    "SuiteResult",
    "build_report",
    "build_table",
    "format_value",
    "load",
    "load_run",
    "load_suite",
    "load_table",
    "results_table",
]


def _runs(result: RunResult | SuiteResult) -> list[RunResult]:
    return result.runs if isinstance(result, SuiteResult) else [result]


def build_report(path: Path, out_dir: Path | None = None) -> Path:
    """Write the charts and ``report.html`` for a run or suite directory; return the HTML path.

    Raises :class:`ReportError` when ``path`` is neither a run directory (has summary.json)
    nor a suite directory (subfolders with summary.json), or when a file is malformed.
    """
    path = Path(path)
    result = load(path)
    out = Path(out_dir) if out_dir is not None else path / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    plots: list[PlotFile] = write_plots(_runs(result), out)
    contribution = None
    if isinstance(result, RunResult):  # `medsilo contribution RUN` wrote contribution.json
        from medsilo.contribution.report_section import contribution_section

        contribution = contribution_section(path, out)
    return write_html(result, plots, out / REPORT_FILE, contribution)


def load_table(path: Path) -> ResultsTable:
    """The results table of a run or suite directory, with column labels and formats."""
    return build_table(_runs(load(Path(path))))


def results_table(path: Path) -> list[dict[str, object]]:
    """Rows of the results table (one per run, all with the same keys in column order).

    Keys: ``run``, ``algorithm``, ``rounds``, ``pooled_accuracy``, ``mean_site_accuracy``,
    ``site_accuracy.<site>`` per site, ``loho_mean_accuracy`` (only when some run has LOHO),
    ``sim_clock_s`` (only when some run has a simulated clock) and ``wall_s``; missing values
    are ``None``. Use :func:`load_table` for labels and formats.
    """
    return load_table(path).rows
