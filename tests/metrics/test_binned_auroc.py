"""Coordinator-side binned AUROC against the exact AUROC of the pooled predictions, on the
bundled heart-disease hospitals and PneumoniaMNIST (target: within 0.005)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from medsilo.data.base import FederatedData
from medsilo.data.registry import build_federation
from medsilo.data.spec import DataConfig
from medsilo.metrics.evaluation import evaluate_states, predict_probabilities
from medsilo.metrics.suite import MetricSuite
from medsilo.models.builder import build_model
from medsilo.models.weights import get_weights
from medsilo.training.local import LocalTraining, train_local
from medsilo.training.tensors import TensorData
from tests.metrics.helpers import binary_predictions

TARGET = 0.005


def _trained(fed: FederatedData, model_name: str, steps: int, lr: float) -> torch.nn.Module:
    model = build_model(model_name, fed.input_shape, fed.num_classes, seed=0)
    train = TensorData.of(fed.pooled_train(), "binary")
    cfg = LocalTraining(batch_size=64, lr=lr, local_steps=steps, momentum=0.9)
    train_local(model, train, cfg, torch.Generator().manual_seed(0))
    return model


def binned_and_exact(fed: FederatedData, model: torch.nn.Module) -> tuple[float, float]:
    """Pooled AUROC from the sites' merged states, and from their pooled predictions."""
    suite = MetricSuite.build(["auroc"])
    weights = get_weights(model)
    tests = [TensorData.of(s.test, "binary") for s in fed.sites]
    merged = suite.merge(evaluate_states(model, weights, t, suite).states for t in tests)
    p = np.concatenate([predict_probabilities(model, t) for t in tests])
    y = np.concatenate([s.test.y for s in fed.sites])
    return suite.values(merged)["auroc"], float(roc_auc_score(y, p))


def test_heart_disease_binned_auroc_is_within_target() -> None:
    fed = build_federation(DataConfig(dataset="heart_disease", standardize="federated"), seed=0)
    binned, exact = binned_and_exact(fed, _trained(fed, "logistic", 300, 0.01))
    assert exact > 0.75  # a real model, not a coin
    assert abs(binned - exact) < TARGET


@pytest.mark.parametrize(
    ("model_name", "steps"),
    [("logistic", 200), pytest.param("cnn", 600, marks=pytest.mark.slow)],
)
def test_pneumoniamnist_binned_auroc_is_within_target(model_name: str, steps: int) -> None:
    cfg = DataConfig(dataset="pneumoniamnist", partition="iid", num_sites=4)
    fed = build_federation(cfg, seed=0)
    binned, exact = binned_and_exact(fed, _trained(fed, model_name, steps, 0.01))
    assert exact > 0.85
    assert abs(binned - exact) < TARGET


def test_confident_scores_keep_their_order() -> None:
    # As an over-trained model: half the rows within 1e-7 of p = 0 or 1, both classes among
    # them. Here 1,000 uniform probability bins miss the exact AUROC by 0.03 and 1,000 logit
    # bins over [-16, 16] by 0.009; the asinh-of-logit bins must stay within 0.001.
    p, y = binary_predictions(4000, seed=30, spread=10.0, scale=20.0)
    assert np.mean((p > 1 - 1e-7) | (p < 1e-7)) > 0.4
    suite = MetricSuite.build(["auroc"])
    assert suite.values(suite.states(p, y))["auroc"] == pytest.approx(roc_auc_score(y, p), abs=1e-3)
