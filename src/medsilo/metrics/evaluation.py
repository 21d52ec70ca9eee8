"""Site-side evaluation: a model's probabilities on a site's data, reduced to metric states.

This is what a runtime calls where it now calls :func:`medsilo.training.evaluate.evaluate`
(which stays as it is: loss and accuracy, bit-for-bit as before). The result holds states
only, never the predictions, so it is what a site may send to the coordinator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from medsilo.metrics.bootstrap import site_replicates
from medsilo.metrics.subgroups import subgroup_states
from medsilo.metrics.suite import MetricSuite, StateSet, state_set_to_wire
from medsilo.models.weights import set_weights
from medsilo.training.tensors import TensorData
from medsilo.types import Weights


@torch.no_grad()
def predict_probabilities(
    model: nn.Module, data: TensorData, batch_size: int = 2048
) -> NDArray[np.float64]:
    """P(class 1) ``(N,)`` for a binary task (sigmoid of the one logit), class
    probabilities ``(N, C)`` otherwise (softmax); computed in float64 from the logits, so
    confident predictions keep their order near 0 and 1."""
    model.eval()
    starts = range(0, max(len(data), 1), batch_size)  # an empty set still gives (0, C)
    logits = torch.cat([model(data.x[s : s + batch_size]).double() for s in starts])
    if data.binary:
        return torch.sigmoid(logits.squeeze(1)).numpy()
    return torch.softmax(logits, dim=1).numpy()


@dataclass(frozen=True)
class SiteEvaluation:
    """What one site reports for one model on one data split."""

    n: int
    states: StateSet
    #: subgroup value -> StateSet; empty without a subgroup column.
    subgroups: dict[str, StateSet] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "states": state_set_to_wire(self.states),
            "subgroups": {g: state_set_to_wire(s) for g, s in self.subgroups.items()},
        }


def evaluate_states(
    model: nn.Module,
    weights: Weights,
    data: TensorData,
    suite: MetricSuite,
    groups: NDArray[Any] | None = None,
) -> SiteEvaluation:
    """Load ``weights`` into ``model`` and reduce its predictions on ``data`` to the
    suite's states, and per subgroup when ``groups`` (one value per row) is given."""
    set_weights(model, weights)
    probabilities = predict_probabilities(model, data)
    labels = data.y.long().numpy()
    by_group = {} if groups is None else subgroup_states(suite, probabilities, labels, groups)
    return SiteEvaluation(len(data), suite.states(probabilities, labels), by_group)


def evaluate_replicates(
    model: nn.Module,
    weights: Weights,
    data: TensorData,
    suite: MetricSuite,
    replicates: int,
    seed: int,
    site: str,
) -> list[StateSet]:
    """Bootstrap replicates of this site's test states (:mod:`medsilo.metrics.bootstrap`)."""
    set_weights(model, weights)
    probabilities = predict_probabilities(model, data)
    return site_replicates(suite, probabilities, data.y.long().numpy(), replicates, seed, site)
