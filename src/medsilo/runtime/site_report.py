"""What a site sends after scoring the global model: metric states only.

Shared by every task's metrics (:class:`medsilo.runtime.clinical.ClinicalMetrics` for class
predictions, :class:`medsilo.runtime.segmentation_metrics.SegmentationMetrics` for label
maps): the in-process engine hands a report over as it is, the Flower apps send
:meth:`SiteReport.to_wire` in the evaluate reply, and the coordinator merges the states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from medsilo.metrics.suite import StateSet, state_set_from_wire, state_set_to_wire


@dataclass(frozen=True)
class SiteReport:
    """One site's states of one evaluation. A task without thresholds or subgroups
    (segmentation) sends empty ``subgroups`` and ``validation``."""

    test: StateSet
    #: subgroup value -> states; empty without ``evaluation.subgroup``.
    subgroups: dict[str, StateSet]
    validation: StateSet
    final: bool
    #: Bootstrap replicates of ``test`` (last evaluation only).
    replicates: list[StateSet] | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "test": state_set_to_wire(self.test),
            "subgroups": {g: state_set_to_wire(v) for g, v in self.subgroups.items()},
            "validation": state_set_to_wire(self.validation),
            "final": self.final,
        }
        if self.replicates is not None:
            wire["replicates"] = [state_set_to_wire(r) for r in self.replicates]
        return wire

    @staticmethod
    def from_wire(raw: dict[str, Any]) -> SiteReport:
        replicates = raw.get("replicates")
        return SiteReport(
            test=state_set_from_wire(raw["test"]),
            subgroups={g: state_set_from_wire(v) for g, v in raw["subgroups"].items()},
            validation=state_set_from_wire(raw["validation"]),
            final=bool(raw["final"]),
            replicates=None if replicates is None else [state_set_from_wire(r) for r in replicates],
        )


def nan_to_null(value: float) -> float | None:
    """NaN (a metric a state cannot define, e.g. AUROC of one class) is written as null."""
    return float(value) if np.isfinite(value) else None


def defined(values: dict[str, float]) -> dict[str, float | None]:
    """Metric values as a round record writes them (undefined ones as null)."""
    return {name: nan_to_null(v) for name, v in values.items()}
