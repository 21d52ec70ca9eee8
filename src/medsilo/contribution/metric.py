"""The validation utility every contribution score is measured with.

``accuracy`` is the metric the reports show; ``neg_loss`` (minus the mean cross-entropy) is
smoother, which matters on small validation sets where many reconstructed models have the
same accuracy and the Shapley game degenerates. Higher is better for both, so a positive
contribution always means "the site made the model better".

The validation set is the federation's pooled test set (the union of the sites' test
splits, :attr:`medsilo.data.base.FederatedData.test`): no extra split is carved out of the
sites' small training sets, and the same set is used by the run's own evaluation. Scores are
therefore attributions *on the test set*, not a model-selection signal.
"""

from __future__ import annotations

import copy
from typing import Literal

from torch import nn

from medsilo.models.weights import set_weights
from medsilo.training.evaluate import evaluate
from medsilo.training.samples import Samples
from medsilo.types import Weights

Metric = Literal["accuracy", "neg_loss"]
METRICS: tuple[Metric, ...] = ("accuracy", "neg_loss")


class Validator:
    """Scores weights on a fixed validation set with a private copy of the model."""

    def __init__(self, model: nn.Module, data: Samples, metric: Metric) -> None:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose one of {list(METRICS)}")
        self.model = copy.deepcopy(model)  # the engine's model is reused by site training
        self.data = data
        self.metric = metric

    def __call__(self, weights: Weights) -> float:
        set_weights(self.model, weights)
        result = evaluate(self.model, self.data)
        return result.accuracy if self.metric == "accuracy" else -result.loss
