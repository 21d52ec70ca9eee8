"""Loss-threshold and offline-LiRA membership inference on memorisable tabular data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsilo.audit.lira import LiraSettings, lira_attack, true_label_confidence
from medsilo.audit.membership import loss_threshold_attack, membership_split
from medsilo.config import RunConfig
from medsilo.models.weights import get_weights
from medsilo.runtime.prepared import PreparedFederation
from medsilo.training.local import LocalTraining, train_local
from medsilo.training.tensors import TensorData
from tests.audit.conftest import audit_config, random_label_federation


def _overfit(prep: PreparedFederation, data: TensorData, epochs: float = 60) -> list[np.ndarray]:
    local = LocalTraining(batch_size=16, lr=0.1, local_epochs=epochs)
    train_local(prep.model, data, local, torch.Generator().manual_seed(0))
    return get_weights(prep.model)


def _setup() -> tuple[PreparedFederation, RunConfig]:
    cfg = audit_config(
        model="mlp", training={"rounds": 1, "local_steps": 1, "batch_size": 16, "lr": 0.1}
    )
    return PreparedFederation.build(cfg, random_label_federation()), cfg


def test_split_is_balanced_disjoint_and_seeded() -> None:
    prep, _ = _setup()
    split = membership_split(prep, None, 1000, seed=0)
    assert len(split.members) == len(split.non_members) == 100  # 2 sites x 50 train rows
    assert len(split.pool) == 150  # the other half of the 300 held-out rows
    rows = {tuple(r) for r in split.non_members.x.numpy().round(5)}
    assert not rows & {tuple(r) for r in split.pool.x.numpy().round(5)}
    again = membership_split(prep, None, 1000, seed=0)
    assert torch.equal(again.members.x, split.members.x)
    assert len(membership_split(prep, "r1", 30, seed=0).members) == 30
    with pytest.raises(ValueError, match="no site named"):
        membership_split(prep, "nowhere", 10, seed=0)


def test_loss_threshold_is_chance_for_an_unseen_model_and_strong_when_overfit() -> None:
    prep, _ = _setup()
    split = membership_split(prep, None, 1000, seed=0)
    unseen = loss_threshold_attack(prep.model, prep.initial_weights, split)
    assert abs(unseen.roc.auc - 0.5) < 0.12
    weights = _overfit(prep, split.members)
    overfit = loss_threshold_attack(prep.model, weights, split)
    assert overfit.roc.auc > 0.75
    assert overfit.roc.auc > unseen.roc.auc + 0.2


def test_confidence_is_the_log_odds_of_the_true_label() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    data = TensorData(torch.zeros(1, 1), torch.tensor([0]), "multiclass")
    p = torch.softmax(logits.double(), 1)[0, 0].item()
    assert true_label_confidence(logits, data)[0] == pytest.approx(np.log(p / (1 - p)))
    binary = TensorData(torch.zeros(2, 1), torch.tensor([1.0, 0.0]), "binary")
    assert list(true_label_confidence(torch.tensor([[1.5], [1.5]]), binary)) == [1.5, -1.5]


def test_lira_runs_on_a_tiny_setup_and_detects_memorisation() -> None:
    prep, cfg = _setup()
    split = membership_split(prep, None, 1000, seed=0)
    weights = _overfit(prep, split.members)
    seen: list[int] = []
    result = lira_attack(cfg, prep, weights, split, LiraSettings(shadows=3, epochs=5), seen.append)
    assert seen == [1, 2, 3]
    assert result.members.shape == (100,) and np.all(np.isfinite(result.members))
    assert result.roc.auc > 0.8
    with pytest.raises(ValueError, match="at least 2 shadow"):
        LiraSettings(shadows=1)
