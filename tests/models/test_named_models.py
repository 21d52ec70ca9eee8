"""Every named model builds for the data's shape and task, and learns (a backward pass)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from medsilo.models import zoo
from medsilo.models.builder import build_model
from medsilo.models.catalog import MODEL_NAMES
from medsilo.models.monai_nets import unet_levels, vit_patch_size
from medsilo.models.spec import ModelConfig

CLASSIFIERS = ("resnet18", "resnet50", "densenet121", "efficientnet_b0", "vit")
SEGMENTERS = ("unet", "segresnet")


def forward_backward(model: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    model.train()
    out = model(torch.randn((2, *shape), generator=torch.Generator().manual_seed(0)))
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    return out


@pytest.mark.parametrize("name", CLASSIFIERS)
@pytest.mark.parametrize(("task", "classes", "outputs"), [("binary", 2, 1), ("multiclass", 3, 3)])
def test_a_monai_classifier_adapts_to_channels_and_outputs(
    name: str, task: str, classes: int, outputs: int
) -> None:
    model = build_model(name, (3, 16, 16), classes, task=task)
    assert forward_backward(model, (3, 16, 16)).shape == (2, outputs)


@pytest.mark.parametrize("name", SEGMENTERS)
def test_a_monai_segmenter_outputs_one_map_per_class(name: str) -> None:
    model = build_model(name, (1, 16, 16), 3, task="segmentation")
    assert forward_backward(model, (1, 16, 16)).shape == (2, 3, 16, 16)


@pytest.mark.parametrize(
    ("name", "task", "expected"),
    [("resnet18", "multiclass", (2, 3)), ("unet", "segmentation", (2, 3, 16, 16, 16))],
)
def test_volumes_get_3d_networks(name: str, task: str, expected: tuple[int, ...]) -> None:
    model = build_model(name, (1, 16, 16, 16), 3, task=task)
    assert any(isinstance(m, nn.Conv3d) for m in model.modules())
    assert forward_backward(model, (1, 16, 16, 16)).shape == expected


def test_small_images_get_a_stride_1_stem_without_max_pool() -> None:
    """MedMNIST v2's ResNet-18 (28): 3x3 stride-1 first conv, no max-pool, below 64 px."""
    small = build_model("resnet18", (1, 28, 28), 2)
    large = build_model("resnet18", (1, 64, 64), 2)
    assert small.get_submodule("conv1").kernel_size == (3, 3)
    assert small.get_submodule("conv1").stride == (1, 1)
    assert small.no_max_pool
    assert large.get_submodule("conv1").kernel_size == (7, 7)
    assert large.get_submodule("conv1").stride == (2, 2)
    assert not large.no_max_pool
    dense = build_model("densenet121", (1, 28, 28), 2)
    assert dense.get_submodule("features.conv0").stride == (1, 1)
    assert isinstance(dense.get_submodule("features.pool0"), nn.Identity)


def test_kwargs_override_defaults_but_not_what_the_data_decides() -> None:
    stem = ModelConfig(name="resnet18", kwargs={"conv1_t_size": 5})
    assert build_model(stem, (1, 28, 28), 2).get_submodule("conv1").kernel_size == (5, 5)
    shallow = ModelConfig(name="vit", kwargs={"num_layers": 2, "hidden_size": 48, "mlp_dim": 96})
    model = build_model(shallow, (1, 28, 28), 2)
    assert len(model.get_submodule("blocks")) == 2
    with pytest.raises(ValueError, match=r"model 'resnet18': model.kwargs sets n_input_channels"):
        build_model(ModelConfig(name="resnet18", kwargs={"n_input_channels": 3}), (1, 8, 8), 2)
    with pytest.raises(ValueError, match=r"model 'mlp' cannot be built with model.kwargs"):
        build_model(ModelConfig(name="mlp", kwargs={"width": 3}), (4,), 2)
    assert (
        build_model(ModelConfig(name="mlp", kwargs={"hidden": 7}), (4,), 2).net[1].out_features == 7
    )


def test_vit_patches_divide_the_image() -> None:
    assert vit_patch_size((28, 28)) == 4
    assert vit_patch_size((224, 224)) == 16
    assert vit_patch_size((16, 16, 16)) == 4
    assert vit_patch_size((5, 5)) == 1
    with pytest.raises(ValueError, match="patch_size 8 does not divide the image"):
        build_model(ModelConfig(name="vit", kwargs={"patch_size": 8}), (1, 28, 28), 2)


def test_unet_depth_fits_the_image() -> None:
    assert unet_levels((32, 32)) == 4 and unet_levels((28, 28)) == 2
    assert unet_levels((16, 16, 16)) == 3
    with pytest.raises(ValueError, match="must be even"):
        build_model("unet", (1, 15, 15), 2, task="segmentation")


def test_a_network_is_refused_for_inputs_that_are_not_images() -> None:
    with pytest.raises(ValueError, match=r"model 'resnet18' needs image inputs \(C, H, W\)"):
        build_model("resnet18", (13,), 2)


def test_a_seed_fixes_the_initial_weights_and_leaves_the_caller_s_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = build_model("resnet18", (1, 16, 16), 2, seed=4)
    assert torch.equal(torch.random.get_rng_state(), before)
    b = build_model("resnet18", (1, 16, 16), 2, seed=4)
    c = build_model("resnet18", (1, 16, 16), 2, seed=5)
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), k
    assert not torch.equal(a.get_submodule("conv1").weight, c.get_submodule("conv1").weight)


@pytest.mark.parametrize(
    ("name", "shape", "make"),
    [
        ("logistic", (13,), lambda: zoo.Logistic(13, 1)),
        ("mlp", (1, 4, 4), lambda: zoo.MLP(16, 1)),
        ("cnn", (1, 8, 8), lambda: zoo.SmallCNN(1, 8, 1)),
        ("cnn_bn", (1, 8, 8), lambda: zoo.SmallCNN(1, 8, 1, batch_norm=True)),
    ],
)
def test_built_in_models_keep_their_initial_weights_for_a_seed(
    name: str, shape: tuple[int, ...], make: object
) -> None:
    """As the four-name zoo built them: constructed right after ``manual_seed(seed)``."""
    torch.manual_seed(7)
    reference = make()  # type: ignore[operator]
    built = build_model(name, shape, 2, seed=7)
    assert type(built) is type(reference)
    for x, y in zip(reference.state_dict().values(), built.state_dict().values(), strict=True):
        assert torch.equal(x, y)


def test_every_name_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text()
    assert all(f"`{name}`" in doc for name in MODEL_NAMES)
