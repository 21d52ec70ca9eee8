"""FedBN needs BatchNorm and DP-SGD refuses it: known from the name, confirmed on the model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from torch import nn

from medsilo.config import ConfigError
from medsilo.models.batch_norm import has_batch_norm
from medsilo.models.builder import build_model
from medsilo.models.catalog import NAMED_MODELS
from medsilo.models.spec import ModelConfig
from medsilo.runtime.simulation import run_federation

from ..conftest import small_config
from .conftest import image_federation

IMAGE = (1, 16, 16)
IMAGE_DATA = {"dataset": "breastmnist", "partition": "iid", "num_sites": 2}


@pytest.mark.parametrize("name", sorted(NAMED_MODELS))
def test_the_static_answer_is_the_built_model_s(name: str) -> None:
    task = "segmentation" if name in ("unet", "segresnet") else "binary"
    shape = (16,) if name in ("logistic", "mlp") else IMAGE
    model = build_model(name, shape, 2, task=task)
    assert ModelConfig(name=name).static_batch_norm() is has_batch_norm(model)


def test_kwargs_that_set_norm_or_a_factory_leave_it_to_the_built_model() -> None:
    assert ModelConfig(name="unet", kwargs={"norm": "batch"}).static_batch_norm() is None
    assert ModelConfig(factory="a.b:c").static_batch_norm() is None
    assert ModelConfig(name="resnet18", batch_norm="group_norm").static_batch_norm() is False


def test_group_norm_replaces_every_batch_norm() -> None:
    cfg = ModelConfig(name="resnet18", batch_norm="group_norm")
    model = build_model(cfg, IMAGE, 2)
    assert not has_batch_norm(model)
    assert any(isinstance(m, nn.GroupNorm) for m in model.modules())


def test_dp_sgd_refuses_batch_norm_and_says_how_to_convert_it() -> None:
    with pytest.raises(ConfigError, match=r"set model\.batch_norm: group_norm"):
        small_config(data=IMAGE_DATA, model={"name": "resnet18"}, privacy={"dp_sgd": {}})
    cfg = small_config(
        data=IMAGE_DATA,
        model={"name": "resnet18", "batch_norm": "group_norm"},
        privacy={"dp_sgd": {}},
    )
    assert cfg.features().model_has_batch_norm is False


def test_fedbn_refuses_a_model_without_batch_norm_by_name() -> None:
    with pytest.raises(ConfigError, match="needs a model with BatchNorm, which model 'vit'"):
        small_config(data=IMAGE_DATA, model={"name": "vit"}, algorithm={"name": "fedbn"})
    assert (
        small_config(data=IMAGE_DATA, model={"name": "densenet121"}, algorithm={"name": "fedbn"})
        .features()
        .model_has_batch_norm
    )


def test_a_converted_resnet_trains_under_dp_sgd() -> None:
    """Opacus' hooks forbid in-place changes of a layer's output, which MONAI's ResNet makes
    (``out += residual``, in-place ReLU): the conversion makes them safe."""
    cfg = small_config(
        model={"name": "resnet18", "batch_norm": "group_norm"},
        privacy={"dp_sgd": {"noise_multiplier": 1.0, "max_grad_norm": 1.0}},
        training={"rounds": 1, "local_steps": 1, "batch_size": 4, "lr": 0.05},
    )
    result = run_federation(cfg, image_federation())
    assert result.rounds[-1]["privacy"]["mechanism"] == "dp_sgd"
    assert math.isfinite(result.rounds[-1]["test"]["loss"])
    initial = build_model(cfg.model, (1, 8, 8), 2, seed=0)
    assert any(
        not np.array_equal(w, i.detach().numpy())
        for w, i in zip(result.weights, initial.state_dict().values(), strict=False)
    )
