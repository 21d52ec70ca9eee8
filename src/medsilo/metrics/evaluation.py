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
from medsilo.training.device import model_device
from medsilo.training.evaluate import EVAL_BATCH_SIZE
from medsilo.training.samples import Samples
from medsilo.training.task import CLASS_TASKS
from medsilo.types import Weights


@torch.no_grad()
def predict(
    model: nn.Module, data: Samples, batch_size: int = EVAL_BATCH_SIZE
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Probabilities and labels of every example, in one pass (a streamed site reads its
    images once): P(class 1) ``(N,)`` for a binary task (sigmoid of the one logit), class
    probabilities ``(N, C)`` otherwise (softmax); computed in float64 from the logits, so
    confident predictions keep their order near 0 and 1."""
    if data.task not in CLASS_TASKS:
        raise ValueError(
            f"the clinical metrics score class predictions; a {data.task} task has none"
        )
    model.eval()
    device = model_device(model)
    logits: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    for x, y in data.ordered_batches(batch_size):
        logits.append(model(x.to(device)).double().cpu())
        labels.append(y.long())
    if not logits:  # an empty streamed set (in-memory data yields one empty batch)
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    out = torch.cat(logits)
    y_all = torch.cat(labels).numpy()
    if data.binary:
        return torch.sigmoid(out.squeeze(1)).numpy(), y_all
    return torch.softmax(out, dim=1).numpy(), y_all


def predict_probabilities(
    model: nn.Module, data: Samples, batch_size: int = EVAL_BATCH_SIZE
) -> NDArray[np.float64]:
    """The probabilities of :func:`predict` alone."""
    return predict(model, data, batch_size)[0]


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
    data: Samples,
    suite: MetricSuite,
    groups: NDArray[Any] | None = None,
) -> SiteEvaluation:
    """Load ``weights`` into ``model`` and reduce its predictions on ``data`` to the
    suite's states, and per subgroup when ``groups`` (one value per row) is given."""
    set_weights(model, weights)
    probabilities, labels = predict(model, data)
    by_group = {} if groups is None else subgroup_states(suite, probabilities, labels, groups)
    return SiteEvaluation(len(data), suite.states(probabilities, labels), by_group)


def evaluate_replicates(
    model: nn.Module,
    weights: Weights,
    data: Samples,
    suite: MetricSuite,
    replicates: int,
    seed: int,
    site: str,
) -> list[StateSet]:
    """Bootstrap replicates of this site's test states (:mod:`medsilo.metrics.bootstrap`)."""
    set_weights(model, weights)
    probabilities, labels = predict(model, data)
    return site_replicates(suite, probabilities, labels, replicates, seed, site)
