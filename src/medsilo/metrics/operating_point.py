"""Choosing the operating threshold on validation data, for the threshold metrics.

Sensitivity and specificity depend on where the score is cut. Tuning that cut on the test set
flatters the model, so the rule runs on *validation* states (the merged score histograms of
data not used for testing) and the chosen probability threshold is then applied unchanged to
the test states, per site, pooled and per subgroup.

Rules (``evaluation.operating_point`` in the run config):

* ``youden``: maximise Youden's J = sensitivity + specificity - 1. A range of tied cuts (the
  empty bins between two scores) resolves to its middle bin edge.
* ``target_sensitivity``: the highest threshold whose validation sensitivity is still at
  least ``value`` (so the best specificity for the sensitivity a screening use needs).

Candidate thresholds are the histogram's bin edges. A one-vs-rest column whose validation
state lacks positives or negatives keeps the default threshold 0.5.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from medsilo.metrics.base import FloatArray, MetricState, OperatingPoint
from medsilo.metrics.score_histogram import edge_probability, positives_at_or_above

DEFAULT_THRESHOLD = 0.5


class YoudenRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rule: Literal["youden"] = "youden"


class TargetSensitivityRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rule: Literal["target_sensitivity"]
    value: float = Field(gt=0, le=1, description="sensitivity the threshold must reach")


OperatingRule = Annotated[YoudenRule | TargetSensitivityRule, Field(discriminator="rule")]


def choose_operating_point(
    validation: MetricState, rule: YoudenRule | TargetSensitivityRule
) -> OperatingPoint:
    """One threshold per one-vs-rest column of a (merged) validation score histogram."""
    tpr_all = positives_at_or_above(validation["positives"])
    fpr_all = positives_at_or_above(validation["negatives"])
    thresholds = []
    for tp, fp in zip(tpr_all, fpr_all, strict=True):
        if tp[0] <= 0 or fp[0] <= 0:
            thresholds.append(DEFAULT_THRESHOLD)
            continue
        tpr, fpr = tp / tp[0], fp / fp[0]
        if isinstance(rule, YoudenRule):
            cut = _middle_of_first_best(tpr - fpr)
        else:
            cut = int(np.flatnonzero(tpr >= rule.value - 1e-12).max())
        thresholds.append(edge_probability(cut))
    return OperatingPoint(tuple(thresholds))


def _middle_of_first_best(score: FloatArray) -> int:
    best = np.flatnonzero(np.isclose(score, score.max(), rtol=0, atol=1e-12))
    run_end = 0
    while run_end + 1 < len(best) and best[run_end + 1] == best[run_end] + 1:
        run_end += 1
    return int(best[run_end // 2])
