"""The report's contribution section: the bar chart and a per-site table from contribution.json.

:func:`medsilo.report.build_report` calls :func:`contribution_section` for a run directory;
a run without ``contribution.json`` (``medsilo contribution RUN`` not run yet) gets none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medsilo.contribution.figure import CHART_FILE, plot_contribution, score_columns
from medsilo.contribution.free_riders import free_rider_lines
from medsilo.contribution.scores import load_scores
from medsilo.report.plots import PlotFile


@dataclass(frozen=True)
class ContributionSection:
    plot: PlotFile
    columns: list[str]
    rows: list[list[str]]
    note: str
    #: Free-rider detection in words, one line per flag (or why it was skipped).
    free_riders: list[str]


def contribution_section(run_dir: Path, out_dir: Path) -> ContributionSection | None:
    """Write the chart into ``out_dir`` and return the section, or ``None`` without scores."""
    scores = load_scores(run_dir)
    if scores is None:
        return None
    plot = PlotFile(plot_contribution(scores, out_dir / CHART_FILE), "Per-site contribution")
    methods = score_columns(scores)
    shares = scores.get("shares")  # absent from files written before reward shares existed
    columns = ["Site", *methods]
    if shares is not None:
        columns.append(f"Reward share (from {shares['from']})")
    if "loo" in scores:
        columns.insert(1, f"{scores['metric']} without the site")
    rows = []
    for site in scores["sites"]:
        row = [site]
        if "loo" in scores:
            row.append(f"{scores['loo'][site]['without']:.4f}")
        row += [f"{values.get(site, 0.0):+.4f}" for values in methods.values()]
        if shares is not None:
            row.append(f"{shares['values'].get(site, 0.0):.4f}")
        rows.append(row)
    note = (
        f"Metric: {scores['metric']} on the {scores['validation']}, n={scores['validation_n']}; "
        f"full federation: {scores['full']:.4f}. Leave-one-out = full minus without the site; "
        "GTG-Shapley sums per-round Shapley values of models reconstructed from the round's "
        "updates. Reward share: the positive part of the score, normalised, 0 for a flagged "
        "free rider (docs/contribution.md)."
    )
    if "site_order_noise" in scores:
        noise = scores["site_order_noise"]
        note += (
            f" Retraining noise floor (full federation, {len(noise['values'])} site orders): "
            f"std {noise['std']:.4f}, range {noise['range']:.4f}; smaller leave-one-out "
            "scores are indistinguishable from noise."
        )
    detection = scores.get("free_riders")
    lines = free_rider_lines(detection).splitlines() if detection is not None else []
    return ContributionSection(plot, columns, rows, note, lines)
