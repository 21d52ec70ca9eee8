"""Segmentation metrics in every runtime: sites send Dice and HD95 states, the coordinator merges.

The segmentation counterpart of :class:`medsilo.runtime.clinical.ClinicalMetrics`, with the
same two halves and the same :class:`SiteReport`, so the in-process engine, the baselines,
leave-one-hospital-out and the Flower apps call it exactly as they call the clinical
metrics (:meth:`ClinicalMetrics.of` picks it for ``task: segmentation``). Each site scores
the global model's label maps on its test images and sends the sums and counts of
:mod:`medsilo.metrics.segmentation`; the coordinator reads pooled, per-site and
all-but-one-site (``without_site``) values from their sums.

A segmentation report has no operating point (the label map is the argmax over channels),
no subgroups and no bootstrap intervals; ``evaluation.metrics`` lists the clinical metrics
of class predictions and is not read here: a segmentation run always reports ``dice`` and
``hd95`` (docs/segmentation.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medsilo.metrics.segmentation import SegmentationStates, SegmentationSuite
from medsilo.metrics.segmentation_evaluation import segmentation_states
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.round_record import RoundFields
from medsilo.runtime.site_report import SiteReport, defined
from medsilo.training.samples import Samples
from medsilo.types import Weights


@dataclass(frozen=True)
class SegmentationMetrics:
    suite: SegmentationSuite = field(default_factory=SegmentationSuite)

    # --- site side ------------------------------------------------------------------------

    def report_for(
        self, prep: PreparedFederation, site: str, weights: Weights, last: bool
    ) -> SiteReport:
        """What ``site`` sends: its test images' states (no validation states: nothing to
        choose a threshold for)."""
        states = segmentation_states(
            prep.model, weights, prep.test[site], self.suite, prep.fed.num_classes
        )
        return SiteReport(test=states, subgroups={}, validation={}, final=last)

    def unseen_hospital(
        self, prep: PreparedFederation, weights: Weights, site: str, unseen: Samples
    ) -> dict[str, Any]:
        """A model trained without ``site`` (``prep``: the federation of the others) scored
        on that hospital's images."""
        states = segmentation_states(prep.model, weights, unseen, self.suite, prep.fed.num_classes)
        return {"metrics": defined(self.suite.values(states))}

    # --- coordinator side -----------------------------------------------------------------

    def fields(self, reports: dict[str, SiteReport]) -> RoundFields:
        """The round record's ``metrics`` from the sites' reports (roster order)."""
        if not reports:
            return {}
        suite = self.suite
        tests: dict[str, SegmentationStates] = {s: r.test for s, r in reports.items()}
        metrics: dict[str, Any] = {
            "lead": suite.lead,
            "pooled": defined(suite.values(suite.merge(tests.values()))),
            "per_site": {s: defined(suite.values(v)) for s, v in tests.items()},
        }
        if len(tests) > 1:
            metrics["without_site"] = {
                s: defined(suite.values(suite.merge(v for o, v in tests.items() if o != s)))
                for s in tests
            }
        return {"metrics": metrics}
