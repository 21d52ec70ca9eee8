"""The metrics a run reports, computed as mergeable states at sites and valued at the
coordinator.

A :class:`MetricSuite` is what a runtime holds: the configured metrics (lead metric first),
and the operating-point rule. Sites call :meth:`MetricSuite.states` on their predictions and
send the resulting :data:`StateSet` (state key -> state; metrics that read the same summary
share one entry); the coordinator adds StateSets up with :meth:`MetricSuite.merge` (all
sites: pooled; all but one: leave-one-hospital-out; one: per site) and reads
:meth:`MetricSuite.values`, with thresholds chosen on merged validation states
(:meth:`MetricSuite.operating_point`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from medsilo.metrics.base import (
    Metric,
    MetricState,
    OperatingPoint,
    Predictions,
    state_from_wire,
    state_to_wire,
)
from medsilo.metrics.operating_point import (
    TargetSensitivityRule,
    YoudenRule,
    choose_operating_point,
)
from medsilo.metrics.registry import MetricRegistry, resolve_metrics
from medsilo.metrics.score_histogram import STATE_KEY as HISTOGRAM_KEY

#: What a site sends for one evaluation: one state per state key.
StateSet = dict[str, MetricState]


@dataclass(frozen=True)
class MetricSuite:
    metrics: tuple[Metric, ...]
    rule: YoudenRule | TargetSensitivityRule

    @staticmethod
    def build(
        names: Sequence[str],
        lead: str | None = None,
        rule: YoudenRule | TargetSensitivityRule | None = None,
        registry: MetricRegistry | None = None,
    ) -> MetricSuite:
        """``names`` from ``registry`` (default: the built-ins), ``lead`` moved first (and
        added when missing)."""
        if registry is None:  # the built-ins plus any metric named by its import path
            registry, names = resolve_metrics([*names, *([lead] if lead else [])])
            lead = names.pop() if lead else None
        ordered = list(names)
        if lead is not None:
            ordered = [lead, *(n for n in ordered if n != lead)]
        metrics = registry.create(ordered)
        return MetricSuite(tuple(metrics), rule or YoudenRule())

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.metrics]

    @property
    def lead(self) -> str:
        return self.metrics[0].name

    def states(
        self,
        probabilities: NDArray[np.floating],
        labels: NDArray[np.integer],
        weights: NDArray[np.floating] | NDArray[np.integer] | None = None,
    ) -> StateSet:
        """Site side: each state key's state once (``weights``: row multiplicities)."""
        predictions = Predictions.of(probabilities, labels, weights)
        out: StateSet = {}
        for metric in self.metrics:
            if metric.state_key not in out:
                out[metric.state_key] = metric.state(predictions)
        return out

    def merge(self, state_sets: Iterable[StateSet]) -> StateSet:
        """Coordinator side: the element-wise sum of StateSets from several sites."""
        items = list(state_sets)
        if not items:
            raise ValueError("no states to merge")
        keys = {m.state_key: m for m in self.metrics}
        return {k: m.merge(s[k] for s in items) for k, m in keys.items()}

    def operating_point(self, validation: StateSet | None) -> OperatingPoint | None:
        """Thresholds by the suite's rule on (merged) validation states; None without them
        (threshold metrics then use 0.5)."""
        if validation is None or HISTOGRAM_KEY not in validation:
            return None
        return choose_operating_point(validation[HISTOGRAM_KEY], self.rule)

    def values(
        self, states: StateSet, operating_point: OperatingPoint | None = None
    ) -> dict[str, float]:
        """Each metric's value, lead metric first (NaN where a state cannot define it)."""
        return {m.name: m.value(states[m.state_key], operating_point) for m in self.metrics}


def state_set_to_wire(states: Mapping[str, MetricState]) -> dict[str, dict[str, object]]:
    """JSON-ready StateSet (what a site sends)."""
    return {k: dict(state_to_wire(v)) for k, v in states.items()}


def state_set_from_wire(raw: Mapping[str, Mapping[str, object]]) -> StateSet:
    return {str(k): state_from_wire(v) for k, v in raw.items()}
