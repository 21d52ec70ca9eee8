"""Metrics per subgroup (sex, age band, ...) and the largest gap between subgroups.

A site splits its predictions by the value of the configured subgroup column
(``evaluation.subgroup``) and sends one StateSet per value it holds
(:func:`subgroup_states`); the coordinator merges each value's StateSets over the sites
(:func:`merge_subgroups`; a site without a value simply sends none for it) and reports every
metric per value together with the largest gap, max minus min over the subgroups where the
metric is defined (:func:`subgroup_report`). Threshold metrics use the run's single operating
point: a gap in sensitivity at one shared threshold is the disparity a deployment would see.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medsilo.data.base import Split
from medsilo.metrics.base import OperatingPoint
from medsilo.metrics.suite import MetricSuite, StateSet


def subgroup_column(data: Split, column: str) -> NDArray[np.str_]:
    """The subgroup values of ``data``'s rows, with an error naming the columns it has (a
    user's own dataset declares its columns in ``ArrayData.groups``)."""
    if column not in data.groups:
        have = ", ".join(sorted(data.groups)) or "none"
        raise ValueError(f"no subgroup column {column!r} in the data (its columns: {have})")
    return data.groups[column]


def subgroup_states(
    suite: MetricSuite,
    probabilities: NDArray[np.floating],
    labels: NDArray[np.integer],
    groups: NDArray[Any],
) -> dict[str, StateSet]:
    """Site side: subgroup value (as text) -> StateSet of that subgroup's rows."""
    g = np.asarray(groups)
    if g.shape != (len(labels),):
        raise ValueError(f"subgroup column has shape {g.shape}; expected ({len(labels)},)")
    p, y = np.asarray(probabilities), np.asarray(labels)
    return {str(v): suite.states(p[g == v], y[g == v]) for v in np.unique(g)}


def merge_subgroups(
    suite: MetricSuite, per_site: Iterable[Mapping[str, StateSet]]
) -> dict[str, StateSet]:
    """Coordinator side: each subgroup's StateSets added up over the sites that hold it."""
    collected: dict[str, list[StateSet]] = {}
    for site in per_site:
        for value, states in site.items():
            collected.setdefault(value, []).append(states)
    return {value: suite.merge(sets) for value, sets in sorted(collected.items())}


@dataclass(frozen=True)
class SubgroupReport:
    """``values[subgroup][metric]`` and ``largest_gap[metric]`` (NaN if under two subgroups
    define the metric)."""

    values: dict[str, dict[str, float]]
    largest_gap: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {"values": self.values, "largest_gap": self.largest_gap}


def subgroup_report(
    suite: MetricSuite,
    merged: Mapping[str, StateSet],
    operating_point: OperatingPoint | None = None,
) -> SubgroupReport:
    values = {g: suite.values(states, operating_point) for g, states in merged.items()}
    gaps = {}
    for name in suite.names:
        defined = [v[name] for v in values.values() if np.isfinite(v[name])]
        gaps[name] = float(max(defined) - min(defined)) if len(defined) > 1 else float("nan")
    return SubgroupReport(values, gaps)
