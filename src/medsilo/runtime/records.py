"""The per-round record every runtime emits (one JSON line in ``rounds.jsonl``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from torch import nn

from medsilo.models.weights import set_weights
from medsilo.training.evaluate import EvalResult, evaluate
from medsilo.training.tensors import TensorData
from medsilo.types import Weights

RoundRecord = dict[str, Any]
RoundCallback = Callable[[RoundRecord], None]


def evaluate_weights(model: nn.Module, weights: Weights, data: TensorData) -> EvalResult:
    set_weights(model, weights)
    return evaluate(model, data)


def evaluation_fields(
    model: nn.Module,
    pooled_weights: Weights,
    site_weights: Mapping[str, Weights],
    pooled_test: TensorData,
    site_tests: Mapping[str, TensorData],
) -> dict[str, Any]:
    """Pooled-test metrics of the global model and per-site metrics of each site's model."""
    per_site = {
        name: evaluate_weights(model, site_weights[name], site_tests[name]).as_dict()
        for name in site_tests
    }
    accs = [float(v["accuracy"]) for v in per_site.values() if v["n"]]
    return {
        "test": evaluate_weights(model, pooled_weights, pooled_test).as_dict(),
        "per_site": per_site,
        "mean_site_accuracy": float(np.mean(accs)) if accs else None,
    }
