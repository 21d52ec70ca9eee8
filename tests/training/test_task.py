"""Each task brings its loss, targets and notion of a right prediction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from medsilo.data.base import ArrayData
from medsilo.training.device import autocast, resolve_device
from medsilo.training.evaluate import evaluate
from medsilo.training.local import LocalTraining, train_local
from medsilo.training.task import as_targets, correct_count, output_size, task_loss
from medsilo.training.tensors import TensorData


def test_output_size_is_one_logit_only_for_binary() -> None:
    assert output_size("binary", 2) == 1
    assert [output_size(t, 4) for t in ("multiclass", "multilabel", "segmentation")] == [4] * 3


def test_multilabel_learns_each_label() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = np.stack([x[:, 0] > 0, x[:, 1] > 0, x[:, 2] + x[:, 3] > 0], axis=1).astype(np.int64)
    data = TensorData.of(ArrayData(x, y), "multilabel")
    assert data.y.dtype == torch.float32
    model = nn.Linear(4, 3)
    before = evaluate(model, data)
    train_local(model, data, LocalTraining(32, 0.5, local_steps=150), torch.Generator())
    after = evaluate(model, data)
    assert after.loss < before.loss and after.accuracy > 0.8


def test_regression_has_mse_loss_and_no_accuracy() -> None:
    x = torch.linspace(-1, 1, 64)[:, None]
    data = TensorData(x, as_targets(3 * x[:, 0], "regression"), "regression")
    model = nn.Linear(1, 1)
    train_local(model, data, LocalTraining(16, 0.3, local_steps=200), torch.Generator())
    result = evaluate(model, data)
    assert result.loss < 1e-3 and math.isnan(result.accuracy)


def test_segmentation_loss_and_pixel_accuracy() -> None:
    mask = torch.zeros(2, 1, 8, 8, dtype=torch.long)
    mask[:, :, 2:6, 2:6] = 1
    perfect = torch.cat([(mask == 0).float(), (mask == 1).float()], dim=1) * 20 - 10
    assert float(task_loss(perfect, mask, "segmentation")) < 0.05
    assert float(task_loss(-perfect, mask, "segmentation")) > 1.0
    assert correct_count(perfect, mask, "segmentation") == pytest.approx(2.0)
    half_wrong = perfect.clone()
    half_wrong[:, :, :4] = -half_wrong[:, :, :4]
    assert correct_count(half_wrong, mask, "segmentation") == pytest.approx(1.0)


def test_device_names() -> None:
    cpu = resolve_device("cpu")
    assert cpu.type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="not one of"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda:0")
    with autocast(cpu, "bf16"):  # the CPU always runs float32
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
