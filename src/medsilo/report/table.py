"""The results table shared by the HTML report and the CLI.

One row per run (:func:`build_table`), or one per config with each metric's mean and spread
over its seeds (:func:`build_config_table`). Keys are stable identifiers
(``pooled_accuracy``, ``site_accuracy.<site>``, ...); each :class:`Column` also carries a
human label, how to format its values and whether higher or lower is better, so that every
front end can mark the best value per column (the best mean, for configs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from medsilo.report.flags import run_flags
from medsilo.report.runs import RunResult
from medsilo.report.seeds import ConfigGroup, MeanStd, mean_std
from medsilo.runtime.round_record import EvalMetrics

Kind = Literal["text", "int", "accuracy", "seconds"]
Better = Literal["max", "min"]

SITE_PREFIX = "site_accuracy."
FLAGS = "flags"


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: Kind
    better: Better | None = None


@dataclass(frozen=True)
class ResultsTable:
    columns: list[Column]
    rows: list[dict[str, object]]

    def best_rows(self, key: str) -> set[int]:
        """Indices of the rows holding the best value of column ``key`` (ties included).

        Empty when the column has no direction or fewer than two runs have a value, since
        "best" of one is meaningless.
        """
        column = next((c for c in self.columns if c.key == key), None)
        if column is None or column.better is None:
            return set()
        values = {i: _number(row.get(key)) for i, row in enumerate(self.rows)}
        present = {i: v for i, v in values.items() if v is not None}
        if len(present) < 2:
            return set()
        best = max(present.values()) if column.better == "max" else min(present.values())
        return {i for i, v in present.items() if v == best}


def _number(value: object) -> float | None:
    if isinstance(value, MeanStd):
        return value.mean
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def format_value(column: Column, value: object) -> str:
    """Text for one cell: accuracies with 3 decimals, seconds with 2, missing as a dash."""
    if value is None:
        return "–"
    if isinstance(value, MeanStd):
        return value.text(2 if column.kind == "seconds" else 3)
    if column.kind == "accuracy" and isinstance(value, int | float):
        return f"{value:.3f}"
    if column.kind == "seconds" and isinstance(value, int | float):
        return f"{value:.2f}"
    return str(value)


def epsilon_text(privacy: object) -> str | None:
    """``"3.00 (1e-05)"`` from a summary's ``privacy`` entry (docs/privacy.md), else None."""
    if not isinstance(privacy, dict):
        return None
    eps, delta = _number(privacy.get("epsilon")), _number(privacy.get("delta"))
    if eps is None or delta is None:
        return None
    return f"{eps:.2f} ({delta:g})"


def test_size_label(label: str, sizes: Sequence[int | None]) -> str:
    """``"va (n=40)"``: a column label with the test-set size behind it (a range when runs
    differ; the label alone when no run recorded one)."""
    known = sorted({n for n in sizes if n is not None})
    if not known:
        return label
    span = str(known[0]) if len(known) == 1 else f"{known[0]}–{known[-1]}"
    return f"{label} (n={span})"


def _site_n(per_site: dict[str, EvalMetrics], site: str) -> int | None:
    metrics = per_site.get(site)
    return metrics.n if metrics is not None else None


def build_table(runs: Sequence[RunResult]) -> ResultsTable:
    """Columns: run, algorithm, rounds, pooled accuracy, mean per-site accuracy, one column
    per site (union over runs; the labels give each test set's size), LOHO mean accuracy
    (only if any run has LOHO), simulated time at the end (only if any run has a simulated
    clock), DP epsilon (only if any run has a privacy budget), wall time, and the run's
    warnings (only if any run has some: failed, incomplete, updates rejected)."""
    sites: dict[str, None] = {}
    for run in runs:
        for site in run.final_per_site:
            sites.setdefault(site, None)
    has_loho = any(run.summary.loho for run in runs)
    pooled_n = [run.summary.final_test.n if run.summary.final_test else None for run in runs]

    columns = [
        Column("run", "Run", "text"),
        Column("algorithm", "Algorithm", "text"),
        Column("rounds", "Rounds", "int"),
        Column("pooled_accuracy", test_size_label("Pooled test acc.", pooled_n), "accuracy", "max"),
        Column("mean_site_accuracy", "Mean per-site acc.", "accuracy", "max"),
    ]
    columns += [
        Column(
            SITE_PREFIX + site,
            test_size_label(site, [_site_n(run.final_per_site, site) for run in runs]),
            "accuracy",
            "max",
        )
        for site in sites
    ]
    if has_loho:
        columns.append(Column("loho_mean_accuracy", "LOHO mean acc.", "accuracy", "max"))
    has_clock = any(run.sim_clock_s is not None for run in runs)
    if has_clock:
        columns.append(Column("sim_clock_s", "Simulated time (s)", "seconds", "min"))
    has_dp = any(isinstance(run.summary.raw.get("privacy"), dict) for run in runs)
    if has_dp:
        columns.append(Column("epsilon", "DP epsilon (delta)", "text"))
    columns.append(Column("wall_s", "Wall time (s)", "seconds", "min"))
    flags = [run_flags(run) for run in runs]
    if any(flags):
        columns.append(Column(FLAGS, "Warnings", "text"))

    rows: list[dict[str, object]] = []
    for run, run_flag in zip(runs, flags, strict=True):
        per_site = run.final_per_site
        row: dict[str, object] = {
            "run": run.name,
            "algorithm": run.summary.algorithm,
            "rounds": run.summary.rounds if run.summary.rounds is not None else len(run.rounds),
            "pooled_accuracy": run.final_pooled_accuracy,
            "mean_site_accuracy": run.final_mean_site_accuracy,
        }
        for site in sites:
            metrics = per_site.get(site)
            row[SITE_PREFIX + site] = metrics.accuracy if metrics is not None else None
        if has_loho:
            row["loho_mean_accuracy"] = run.loho_mean_accuracy
        if has_clock:
            row["sim_clock_s"] = run.sim_clock_s
        if has_dp:
            row["epsilon"] = epsilon_text(run.summary.raw.get("privacy"))
        row["wall_s"] = run.wall_s
        if any(flags):
            row[FLAGS] = "; ".join(run_flag) or None
        rows.append(row)
    return ResultsTable(columns=columns, rows=rows)


def build_config_table(groups: Sequence[ConfigGroup]) -> ResultsTable:
    """One row per config: the columns of :func:`build_table` with ``run`` replaced by
    ``config`` and ``seeds`` (how many runs), every directed metric as a :class:`MeanStd`
    over the config's runs (so the best row is the best mean), other columns as the distinct
    values of its runs, and each run's warnings prefixed by the run's name."""
    per_run = build_table([run for group in groups for run in group.runs])
    columns = [Column("config", "Config", "text"), Column("seeds", "Seeds", "int")]
    columns += [c for c in per_run.columns if c.key != "run"]
    rows: list[dict[str, object]] = []
    start = 0
    for group in groups:
        members = per_run.rows[start : start + len(group.runs)]
        start += len(group.runs)
        row: dict[str, object] = {"config": group.name, "seeds": len(group.runs)}
        for column in columns[2:]:
            values = [member.get(column.key) for member in members]
            if column.key == FLAGS:
                row[FLAGS] = _group_flags(group, values)
            elif column.better is not None:
                row[column.key] = mean_std([_number(v) for v in values])
            else:
                distinct = list(dict.fromkeys(str(v) for v in values if v is not None))
                row[column.key] = ", ".join(distinct) or None
        rows.append(row)
    return ResultsTable(columns=columns, rows=rows)


def _group_flags(group: ConfigGroup, values: Sequence[object]) -> str | None:
    if len(group.runs) == 1:
        return values[0] if isinstance(values[0], str) else None
    flagged = [
        f"{run.name}: {value}"
        for run, value in zip(group.runs, values, strict=True)
        if isinstance(value, str)
    ]
    return "; ".join(flagged) or None
