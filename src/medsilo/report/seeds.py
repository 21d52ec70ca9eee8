"""Runs of one config over several seeds, folded into one result: mean and spread.

A suite runs each config once per seed (``medsilo simulate --seeds 0-2``); every such run
keeps the config's name in its ``summary.json`` (the folders differ: ``<name>-s<seed>``).
Comparing single seeds invites picking the lucky one, so the report compares configs by
their mean over seeds and shows each seed only folded underneath.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from medsilo.report.runs import RunResult


@dataclass(frozen=True)
class MeanStd:
    """Mean and standard deviation of one metric over the seeds that have it.

    ``std`` is the population standard deviation (``numpy.std``'s default), the same as
    the terminal table of ``medsilo simulate`` prints, so both show the same numbers.
    """

    mean: float
    std: float
    count: int

    def text(self, digits: int) -> str:
        """``"0.812 ± 0.010"``; the mean alone for a single value (a spread of one is 0)."""
        mean = f"{self.mean:.{digits}f}"
        return f"{mean} ± {self.std:.{digits}f}" if self.count > 1 else mean


def mean_std(values: Sequence[float | None]) -> MeanStd | None:
    """Mean and spread of the present, finite values; ``None`` when there are none."""
    present = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not present:
        return None
    return MeanStd(statistics.fmean(present), statistics.pstdev(present), len(present))


@dataclass(frozen=True)
class ConfigGroup:
    """The runs of one config (one per seed), in suite order."""

    name: str
    runs: list[RunResult]

    @property
    def seeds(self) -> list[int]:
        return [run.summary.seed for run in self.runs if run.summary.seed is not None]


def group_by_config(runs: Sequence[RunResult]) -> list[ConfigGroup]:
    """Runs sharing the summary's config name, algorithm and dataset form one group;
    groups keep the order of their first run. A group of one run keeps that run's display
    name (which a suite may have made unique from its folder)."""
    groups: dict[tuple[str, str | None, str | None], list[RunResult]] = {}
    for run in runs:
        key = (run.summary.name, run.summary.algorithm, run.summary.dataset)
        groups.setdefault(key, []).append(run)
    return [
        ConfigGroup(members[0].name if len(members) == 1 else key[0], members)
        for key, members in groups.items()
    ]
