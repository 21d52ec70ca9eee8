"""Clinical metrics in every runtime: sites send mergeable states, the coordinator merges.

Each evaluation round, every site (or, with ``evaluation.sites: cohort``, every site the
round sampled) scores the *global* model on its own data and sends a
report of metric states only (:mod:`medsilo.metrics`: binned score histograms, confusion and
calibration counts; never a per-patient prediction):

* ``test``: its test set, and per subgroup value when ``evaluation.subgroup`` names a column;
* ``validation``: up to :data:`VALIDATION_ROWS` rows of its *training* set, drawn with a
  generator seeded by the run seed and the site. The sites hold no separate validation split,
  so the operating threshold (Youden's J or a target sensitivity) is chosen on training data:
  never on test data, but optimistic for a model that overfits (docs/metrics.md);
* at the last evaluation, ``evaluation.bootstrap_replicates`` resamples of its test states,
  for 95% intervals.

A segmentation task has its own metrics with the same halves and the same
:class:`~medsilo.runtime.site_report.SiteReport` (:mod:`medsilo.runtime.segmentation_metrics`);
:meth:`ClinicalMetrics.of` picks by task.

The coordinator (:meth:`ClinicalMetrics.fields`) merges the validation states of all sites
into one operating point, then reads pooled, per-site, all-but-one-site (``without_site``)
and subgroup values at that point, and intervals from the merged replicates. The in-process
engine and the Flower apps call the same two halves, so their records are identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from medsilo.config import RunConfig
from medsilo.data.base import Split
from medsilo.metrics.bootstrap import confidence_intervals
from medsilo.metrics.evaluation import evaluate_replicates, evaluate_states
from medsilo.metrics.score_histogram import STATE_KEY as HISTOGRAM_KEY
from medsilo.metrics.subgroups import merge_subgroups, subgroup_column, subgroup_report
from medsilo.metrics.suite import MetricSuite, StateSet
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.round_record import RoundFields
from medsilo.runtime.segmentation_metrics import SegmentationMetrics
from medsilo.runtime.site_report import SiteReport, defined, nan_to_null
from medsilo.training.samples import Samples
from medsilo.training.task import CLASS_TASKS
from medsilo.types import Weights

#: Training rows per site scored to choose the operating threshold (bounds the cost).
VALIDATION_ROWS = 500
VALIDATION_TAG = 0x7A11D


def validation_rows(train: Samples, seed: int, site_index: int) -> Samples:
    """A seeded subset of a site's training rows (all of them when few)."""
    n = len(train)
    if n <= VALIDATION_ROWS:
        return train
    rng = np.random.default_rng([seed, site_index, VALIDATION_TAG])
    keep = np.sort(rng.choice(n, size=VALIDATION_ROWS, replace=False)).astype(np.int64)
    return train.subset(keep)


@dataclass(frozen=True)
class ClinicalMetrics:
    """The run's metric suite and how it is evaluated (``evaluation`` in the config)."""

    suite: MetricSuite
    subgroup: str | None
    replicates: int
    seed: int

    @staticmethod
    def of(cfg: RunConfig, task: str) -> RunMetrics | None:
        """The metrics of ``task``: the configured clinical metrics of class predictions,
        Dice and HD95 of label maps for segmentation
        (:class:`~medsilo.runtime.segmentation_metrics.SegmentationMetrics`), ``None`` for a
        task that has neither (multilabel, regression) or when the config lists no metrics."""
        ev = cfg.evaluation
        if task == "segmentation":
            return SegmentationMetrics()
        if not ev.metrics or task not in CLASS_TASKS:
            return None
        suite = MetricSuite.build(ev.metrics, ev.lead_for(task), ev.operating_point)
        return ClinicalMetrics(suite, ev.subgroup, ev.bootstrap_replicates, cfg.seed)

    # --- site side ------------------------------------------------------------------------

    def site_report(
        self,
        model: nn.Module,
        weights: Weights,
        site: str,
        site_index: int,
        test: Samples,
        test_rows: Split,
        train: Samples,
        last: bool,
    ) -> SiteReport:
        """What one site sends (states only)."""
        groups = subgroup_column(test_rows, self.subgroup) if self.subgroup else None
        tested = evaluate_states(model, weights, test, self.suite, groups)
        validation = self.validation_states(model, weights, train, site_index)
        replicates = None
        if last and self.replicates > 0:
            replicates = evaluate_replicates(
                model, weights, test, self.suite, self.replicates, self.seed, site
            )
        return SiteReport(tested.states, tested.subgroups, validation, last, replicates)

    def validation_states(
        self, model: nn.Module, weights: Weights, train: Samples, site_index: int
    ) -> StateSet:
        """The states the operating threshold is chosen on (see the module docstring)."""
        rows = validation_rows(train, self.seed, site_index)
        return evaluate_states(model, weights, rows, self.suite).states

    def report_for(
        self, prep: PreparedFederation, site: str, weights: Weights, last: bool
    ) -> SiteReport:
        """:meth:`site_report` of ``site`` in a prepared federation (engine and Flower)."""
        index = prep.fed.site_names.index(site)
        return self.site_report(
            prep.model,
            weights,
            site,
            index,
            prep.test[site],
            prep.fed.sites[index].test,
            prep.train[site],
            last,
        )

    def unseen_hospital(
        self, prep: PreparedFederation, weights: Weights, site: str, unseen: Samples
    ) -> dict[str, Any]:
        """A model trained without ``site`` (``prep``: the federation of the others) on that
        hospital's data, at the operating point chosen on the others' training rows, with a
        bootstrap interval: how it would do at a hospital it has never seen."""
        suite = self.suite
        validation = (  # the other hospitals' rows only: no test set is scored here
            self.validation_states(prep.model, weights, prep.train[s], i)
            for i, s in enumerate(prep.fed.site_names)
        )
        point = suite.operating_point(suite.merge(validation))
        tested = evaluate_states(prep.model, weights, unseen, suite)
        out: dict[str, Any] = {"metrics": defined(suite.values(tested.states, point))}
        if self.replicates > 0:
            reps = evaluate_replicates(
                prep.model, weights, unseen, suite, self.replicates, self.seed, site
            )
            intervals = confidence_intervals(suite, {site: reps}, point)[site]
            out["intervals"] = {
                m: [nan_to_null(lo), nan_to_null(hi)] for m, (lo, hi) in intervals.items()
            }
        return out

    # --- coordinator side -----------------------------------------------------------------

    def fields(self, reports: dict[str, SiteReport]) -> RoundFields:
        """The round record's ``metrics`` (and, at the end, ``metric_intervals``) from the
        sites' reports, merged in the order given (roster order)."""
        suite = self.suite
        if not reports:
            return {}
        tests = {s: r.test for s, r in reports.items()}
        point = suite.operating_point(suite.merge(r.validation for r in reports.values()))
        metrics: dict[str, Any] = {
            "lead": suite.lead,
            "operating_point": None if point is None else list(point.thresholds),
            "pooled": defined(suite.values(suite.merge(tests.values()), point)),
            "per_site": {s: defined(suite.values(v, point)) for s, v in tests.items()},
        }
        if len(tests) > 1:
            metrics["without_site"] = {
                s: defined(suite.values(suite.merge(_others(tests, s)), point)) for s in tests
            }
        if self.subgroup:
            merged = merge_subgroups(suite, (r.subgroups for r in reports.values()))
            report = subgroup_report(suite, merged, point)
            metrics["subgroups"] = {
                "column": self.subgroup,
                "values": {g: defined(v) for g, v in report.values.items()},
                "largest_gap": defined(report.largest_gap),
            }
        if all(r.final for r in reports.values()):  # the report's ROC/calibration plots
            scopes = {"pooled": suite.merge(tests.values()), **tests}
            metrics["curves"] = {scope: curves(states) for scope, states in scopes.items()}
        out: RoundFields = {"metrics": metrics}
        replicated = {s: r.replicates for s, r in reports.items() if r.replicates is not None}
        if len(replicated) == len(reports):
            intervals = confidence_intervals(suite, replicated, point)
            out["metric_intervals"] = {
                scope: {m: [nan_to_null(lo), nan_to_null(hi)] for m, (lo, hi) in values.items()}
                for scope, values in intervals.items()
            }
        return out


#: The metrics a runtime holds: either kind has ``report_for`` (site side), ``fields``
#: (coordinator side) and ``unseen_hospital`` (leave-one-hospital-out).
RunMetrics = ClinicalMetrics | SegmentationMetrics


def curves(states: StateSet) -> dict[str, Any]:
    """The ROC curve (binary tasks: from the score histogram, one point per occupied bin,
    highest threshold first) and the reliability diagram (per calibration bin with rows: mean
    predicted risk, observed rate, rows) of merged states; a part its state lacks is left out."""
    out: dict[str, Any] = {}
    histogram = states.get(HISTOGRAM_KEY)
    if histogram is not None and len(histogram["positives"]) == 1:
        pos, neg = histogram["positives"][0], histogram["negatives"][0]
        occupied = (pos > 0) | (neg > 0)
        tp, fp = np.cumsum(pos[occupied][::-1]), np.cumsum(neg[occupied][::-1])
        if tp.size and tp[-1] > 0 and fp[-1] > 0:
            out["roc"] = {
                "fpr": [0.0, *(fp / fp[-1]).round(5).tolist()],
                "tpr": [0.0, *(tp / tp[-1]).round(5).tolist()],
            }
    calibration = states.get("ece")
    if calibration is not None:
        rows = calibration["count"]
        used = rows > 0
        out["calibration"] = {
            "predicted": (calibration["confidence"][used] / rows[used]).round(5).tolist(),
            "observed": (calibration["outcome"][used] / rows[used]).round(5).tolist(),
            "rows": rows[used].tolist(),
        }
    return out


def _others(tests: dict[str, StateSet], left_out: str) -> list[StateSet]:
    return [states for site, states in tests.items() if site != left_out]
