"""The results table shared by the HTML report and the CLI.

One row per run. Keys are stable identifiers (``pooled_accuracy``, ``site_accuracy.<site>``,
...); each :class:`Column` also carries a human label, how to format its values and whether
higher or lower is better, so that every front end can mark the best value per column.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from medsilo.report.runs import RunResult

Kind = Literal["text", "int", "accuracy", "seconds"]
Better = Literal["max", "min"]

SITE_PREFIX = "site_accuracy."


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
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def format_value(column: Column, value: object) -> str:
    """Text for one cell: accuracies with 3 decimals, seconds with 2, missing as a dash."""
    if value is None:
        return "–"
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


def build_table(runs: Sequence[RunResult]) -> ResultsTable:
    """Columns: run, algorithm, rounds, pooled accuracy, mean per-site accuracy, one column
    per site (union over runs), LOHO mean accuracy (only if any run has LOHO), simulated
    time at the end (only if any run has a simulated clock), wall time."""
    sites: dict[str, None] = {}
    for run in runs:
        for site in run.final_per_site:
            sites.setdefault(site, None)
    has_loho = any(run.summary.loho for run in runs)

    columns = [
        Column("run", "Run", "text"),
        Column("algorithm", "Algorithm", "text"),
        Column("rounds", "Rounds", "int"),
        Column("pooled_accuracy", "Pooled test acc.", "accuracy", "max"),
        Column("mean_site_accuracy", "Mean per-site acc.", "accuracy", "max"),
    ]
    columns += [Column(SITE_PREFIX + site, site, "accuracy", "max") for site in sites]
    if has_loho:
        columns.append(Column("loho_mean_accuracy", "LOHO mean acc.", "accuracy", "max"))
    has_clock = any(run.sim_clock_s is not None for run in runs)
    if has_clock:
        columns.append(Column("sim_clock_s", "Simulated time (s)", "seconds", "min"))
    has_dp = any(isinstance(run.summary.raw.get("privacy"), dict) for run in runs)
    if has_dp:
        columns.append(Column("epsilon", "DP epsilon (delta)", "text"))
    columns.append(Column("wall_s", "Wall time (s)", "seconds", "min"))

    rows: list[dict[str, object]] = []
    for run in runs:
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
        rows.append(row)
    return ResultsTable(columns=columns, rows=rows)
