"""Bar chart of per-site contribution scores (leave-one-out and/or GTG-Shapley side by side)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

CHART_FILE = "contribution.png"


def score_columns(scores: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``{label: {site: score}}`` for the methods present in a ``contribution.json``."""
    columns: dict[str, dict[str, float]] = {}
    if "loo" in scores:
        columns["Leave-one-out"] = {s: float(v["score"]) for s, v in scores["loo"].items()}
    if "shapley" in scores:
        columns["GTG-Shapley"] = {s: float(v) for s, v in scores["shapley"]["values"].items()}
    return columns


def plot_contribution(scores: dict[str, Any], path: Path) -> Path:
    """Write the chart to ``path`` and return it."""
    sites: list[str] = list(scores["sites"])
    columns = score_columns(scores)
    x = np.arange(len(sites))
    width = 0.8 / max(1, len(columns))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(sites) + 2), 3.6))
    try:
        for k, (label, values) in enumerate(columns.items()):
            heights = [values.get(s, 0.0) for s in sites]
            ax.bar(x + (k - (len(columns) - 1) / 2) * width, heights, width, label=label)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(x, sites, rotation=20)
        ax.set_ylabel(f"contribution ({scores['metric']})")
        ax.set_title("Per-site contribution to the global model")
        if columns:
            ax.legend()
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path
