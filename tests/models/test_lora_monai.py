"""LoRA on MONAI networks built directly: a 2D ResNet-18 (BatchNorm backbone), a 3D
SegResNet (Conv3d adapters, a segmentation head) and a ViT (a tuple output)."""

from __future__ import annotations

import torch
from monai.networks import nets
from torch import nn

from medsilo.models.frozen_norm import FrozenBatchNorm
from medsilo.models.lora import apply_lora, find_head
from medsilo.models.lora_config import LoraConfig
from medsilo.models.weights import Layout, get_weights


def _floats(model: nn.Module) -> int:
    return sum(t.numel() for t in model.state_dict().values() if t.is_floating_point())


def _trains(model: nn.Module, shape: tuple[int, ...]) -> None:
    out = model(torch.randn(2, *shape, generator=torch.Generator().manual_seed(0)))
    out = out[0] if isinstance(out, tuple) else out
    out.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)


def test_resnet18_sends_over_50x_fewer_values_than_in_full() -> None:
    shape = (1, 28, 28)
    model = nets.resnet18(spatial_dims=2, n_input_channels=1, num_classes=1)
    full = _floats(model)
    assert find_head(model, shape) == "fc"
    model = apply_lora(model, LoraConfig(r=4), shape, seed=0)
    sent = sum(w.size for w in get_weights(model))
    assert sent * 50 < full
    assert isinstance(model.bn1, FrozenBatchNorm)
    assert not any("bn" in n or "running" in n for n in Layout.of(model).names)
    _trains(model, shape)


def test_segresnet_3d_gets_conv3d_adapters_and_a_trained_output_conv() -> None:
    shape = (1, 16, 16, 16)
    model = nets.SegResNet(spatial_dims=3, in_channels=1, out_channels=2, init_filters=8)
    model = apply_lora(model, LoraConfig(r=2), shape, seed=0)
    names = Layout.of(model).names
    assert any(n.startswith("conv_final.2.conv.modules_to_save.") for n in names)
    assert any(".lora_A." in n and model.get_parameter(n).ndim == 5 for n in names)
    _trains(model, shape)


def test_vit_head_is_found_through_its_tuple_output() -> None:
    shape = (1, 28, 28)
    model = nets.ViT(
        in_channels=1,
        img_size=(28, 28),
        patch_size=(7, 7),
        spatial_dims=2,
        classification=True,
        num_classes=3,
        hidden_size=48,
        mlp_dim=96,
        num_heads=4,
        num_layers=1,
    )
    assert find_head(model, shape) == "classification_head.0"
    model = apply_lora(model, LoraConfig(r=2), shape, seed=0)
    _trains(model, shape)


def test_dp_sgd_trains_adapters_of_a_batch_norm_backbone() -> None:
    """Opacus refuses BatchNorm; frozen BatchNorm is a per-example map, so it passes, and
    only the adapters and the head move."""
    from medsilo.privacy.dp_sgd import DPSGDPlan, check_model, train_local_dp
    from medsilo.training.local import LocalTraining, TrainHooks
    from medsilo.training.tensors import TensorData

    shape = (1, 28, 28)
    model = apply_lora(
        nets.resnet18(spatial_dims=2, n_input_channels=1, num_classes=1),
        LoraConfig(r=2),
        shape,
        seed=0,
    )
    check_model(model)
    g = torch.Generator().manual_seed(0)
    data = TensorData(
        torch.randn(24, *shape, generator=g), torch.rand(24, generator=g).round(), "binary"
    )
    frozen = {
        n: t.clone() for n, t in model.state_dict().items() if n not in Layout.of(model).names
    }
    before = get_weights(model)
    plan = DPSGDPlan(max_grad_norm=1.0, noise_multiplier=1.0, delta=1e-5, rounds=1)
    local = LocalTraining(batch_size=8, lr=0.1, local_steps=2)
    train_local_dp(model, data, local, plan, g, TrainHooks())
    after = get_weights(model)
    assert any(
        not torch.equal(torch.from_numpy(a), torch.from_numpy(b))
        for a, b in zip(before, after, strict=True)
    )
    state = model.state_dict()
    assert all(torch.equal(state[n], t) for n, t in frozen.items())
