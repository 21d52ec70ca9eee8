"""Attack behaviours on their own: poisoned updates and poisoned training sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter

from medsilo.attacks.data import (
    backdoor_success,
    flip_labels,
    plant_backdoor,
    poisoned_training_data,
    stamp_trigger,
)
from medsilo.attacks.updates import poison_update
from medsilo.config import AttackConfig, BackdoorAttack
from medsilo.models.builder import build_model
from medsilo.models.weights import get_weights
from medsilo.training.tensors import TensorData

ATTACK: TypeAdapter[AttackConfig] = TypeAdapter(AttackConfig)


def attack(**fields: object) -> AttackConfig:
    return ATTACK.validate_python({"sites": ["s"], **fields})


def delta() -> list[np.ndarray]:
    return [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(2, np.float32)]


def data(n: int = 20, classes: int = 10) -> TensorData:
    x = torch.arange(n * 12, dtype=torch.float32).reshape(n, 1, 3, 4) / 100
    return TensorData(x, torch.arange(n) % classes, "multiclass")


def test_sign_flip_and_scale() -> None:
    rng = np.random.default_rng(0)
    flipped = poison_update(delta(), attack(kind="sign_flip", scale=10.0), rng)
    scaled = poison_update(delta(), attack(kind="scale", scale=3.0), rng)
    for f, s, d in zip(flipped, scaled, delta(), strict=True):
        np.testing.assert_array_equal(f, -10 * d)
        np.testing.assert_array_equal(s, 3 * d)
        assert f.dtype == np.float32


def test_gaussian_replaces_the_update_by_noise() -> None:
    big = [np.zeros((200, 100), np.float32)]
    out = poison_update(big, attack(kind="gaussian", std=2.0), np.random.default_rng(0))
    assert out[0].dtype == np.float32
    assert np.std(out[0]) == pytest.approx(2.0, rel=0.02)


def test_data_attacks_leave_the_update_alone() -> None:
    out = poison_update(delta(), attack(kind="label_flip"), np.random.default_rng(0))
    np.testing.assert_array_equal(out[0], delta()[0])


def test_label_flip_multiclass_and_binary() -> None:
    d = data()
    assert flip_labels(d, 10).y.tolist() == [9 - y for y in d.y.tolist()]
    binary = TensorData(d.x, torch.tensor([0.0, 1.0, 1.0]), "binary")
    assert flip_labels(binary, 2).y.tolist() == [1.0, 0.0, 0.0]


def test_trigger_sets_the_last_features() -> None:
    x = torch.zeros(2, 1, 3, 4)
    out = stamp_trigger(x, 3, 7.0)
    assert out.shape == x.shape and float(x.abs().sum()) == 0  # a copy
    assert out[0, 0, 2].tolist() == [0.0, 7.0, 7.0, 7.0]
    assert float(out.sum()) == 2 * 3 * 7.0


def test_backdoor_poisons_a_seeded_share_and_keeps_the_original() -> None:
    d = data()
    cfg = attack(kind="backdoor", target=3, fraction=0.25, trigger_size=2, trigger_value=9.0)
    assert isinstance(cfg, BackdoorAttack)
    out = plant_backdoor(d, cfg, seed=1)
    triggered = (out.x.reshape(20, -1)[:, -2:] == 9.0).all(dim=1)
    assert int(triggered.sum()) == 5
    assert (out.y[triggered] == 3).all()
    assert torch.equal(out.y[~triggered], d.y[~triggered])
    assert not (d.x == 9.0).any()  # the honest tensors are untouched
    again = plant_backdoor(d, cfg, seed=1)
    assert torch.equal(again.x, out.x)


def test_only_listed_sites_are_poisoned() -> None:
    d = data()
    cfg = attack(kind="label_flip")
    assert poisoned_training_data(cfg, "other", d, 10, 0) is d
    assert poisoned_training_data(None, "s", d, 10, 0) is d
    assert poisoned_training_data(attack(kind="scale"), "s", d, 10, 0) is d
    assert poisoned_training_data(cfg, "s", d, 10, 0).y.tolist() != d.y.tolist()


def test_backdoor_success_counts_triggered_non_target_rows() -> None:
    d = data()
    model = build_model("logistic", (1, 3, 4), 10, seed=0)
    cfg = attack(kind="backdoor", target=0, trigger_size=2)
    assert isinstance(cfg, BackdoorAttack)
    result = backdoor_success(model, get_weights(model), d, cfg)
    assert result["n"] == 18  # rows labelled 0 are not counted
    assert 0.0 <= result["success"] <= 1.0
