"""LoRA adapters on a frozen backbone: what trains, what travels, what stays put."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from torch import nn

from medsilo.config import parse_config
from medsilo.models.builder import build_model
from medsilo.models.frozen_norm import FrozenBatchNorm
from medsilo.models.lora import LoraError, apply_lora, find_head, with_lora
from medsilo.models.lora_config import LoraConfig
from medsilo.models.weights import Layout, get_weights, set_weights

SHAPE = (1, 8, 8)


def _lora_cnn(name: str = "cnn", **lora: object) -> nn.Module:
    return apply_lora(build_model(name, SHAPE, 3, seed=0), LoraConfig(**lora), SHAPE, seed=0)  # type: ignore[arg-type]


def test_only_adapters_and_head_train_and_travel() -> None:
    model = _lora_cnn(r=2)
    layout = Layout.of(model)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert list(layout.names) == trainable
    assert all(layout.trainable) and not any(layout.norm_layer)
    assert all(".lora_" in n or n.startswith("head.3.modules_to_save.") for n in layout.names)
    # every Linear and Conv but the head got an adapter; the head trains in full
    adapted = {n.split(".lora_")[0] for n in layout.names if ".lora_" in n}
    assert adapted == {"features.0", "features.3", "head.1"}
    assert {"head.3.modules_to_save.default.weight", "head.3.modules_to_save.default.bias"} <= set(
        layout.names
    )
    sent = sum(w.size for w in get_weights(model))
    full = sum(p.numel() for p in build_model("cnn", SHAPE, 3).parameters())
    assert sent < full / 5


def test_adapted_model_starts_as_the_backbone_and_keeps_its_forward() -> None:
    x = torch.randn(4, *SHAPE, generator=torch.Generator().manual_seed(1))
    plain = build_model("cnn", SHAPE, 3, seed=0)
    before = plain(x)
    model = apply_lora(plain, LoraConfig(r=2), SHAPE, seed=0)
    assert type(model).__name__ == "SmallCNN"  # a plain module, not a peft wrapper
    assert torch.allclose(model(x), before, atol=1e-6)  # B starts at zero


def test_the_seed_fixes_the_adapters() -> None:
    first, second = get_weights(_lora_cnn()), get_weights(_lora_cnn())
    assert all(np.array_equal(u, v) for u, v in zip(first, second, strict=True))
    other = get_weights(
        apply_lora(build_model("cnn", SHAPE, 3, seed=0), LoraConfig(), SHAPE, seed=1)
    )
    assert not all(np.array_equal(u, v) for u, v in zip(first, other, strict=True))


def test_set_weights_moves_only_the_transmitted_tensors() -> None:
    model = _lora_cnn()
    frozen = {
        n: t.clone() for n, t in model.state_dict().items() if n not in Layout.of(model).names
    }
    new = [np.full_like(w, 0.5) for w in get_weights(model)]
    set_weights(model, new)
    assert all(np.array_equal(w, v) for w, v in zip(get_weights(model), new, strict=True))
    assert all(torch.equal(model.state_dict()[n], t) for n, t in frozen.items())
    with pytest.raises(ValueError, match="weight tensors"):
        set_weights(model, new[:-1])


def test_models_without_frozen_parameters_send_every_floating_entry() -> None:
    model = build_model("cnn_bn", SHAPE, 3, seed=0)
    floats = {n: t for n, t in model.state_dict().items() if t.is_floating_point()}
    layout = Layout.of(model)
    assert list(layout.names) == list(floats)  # running statistics included
    assert [n.endswith(("running_mean", "running_var")) for n in layout.names] == [
        not t for t in layout.trainable
    ]
    for w, t in zip(get_weights(model), floats.values(), strict=True):
        assert np.array_equal(w, t.numpy())


def test_frozen_batch_norm_keeps_its_statistics_through_training() -> None:
    model = build_model("cnn_bn", SHAPE, 3, seed=0)
    bn = model.features[1]
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    stats = bn.running_mean.clone(), bn.running_var.clone()
    x = torch.randn(6, *SHAPE, generator=torch.Generator().manual_seed(2))
    model.eval()
    expected = model(x)
    model = apply_lora(model, LoraConfig(), SHAPE, seed=0)
    frozen = model.features[1]
    assert isinstance(frozen, FrozenBatchNorm)
    model.train()
    assert torch.allclose(model(x), expected, atol=1e-5)  # training mode normalises alike
    model(x).sum().backward()
    assert torch.equal(frozen.running_mean, stats[0]) and torch.equal(frozen.running_var, stats[1])
    assert not any(n.startswith("features.1.") for n in Layout.of(model).names)


def test_find_head_picks_the_last_layer_with_the_outputs() -> None:
    assert find_head(build_model("cnn", SHAPE, 3), SHAPE) == "head.3"
    assert find_head(build_model("mlp", SHAPE, 2), SHAPE) == "net.5"  # binary: one logit


class _PooledHead(nn.Module):
    """Ends in a pooling, not a layer of the output size: the head cannot be found."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(1)).view(-1, 2, 4).mean(dim=2)


def test_a_model_without_a_findable_head_is_refused_with_the_fix() -> None:
    with pytest.raises(LoraError, match=r"no Linear or Conv layer produces its 2 outputs.*body"):
        apply_lora(_PooledHead(), LoraConfig(), (8,))
    with pytest.raises(LoraError, match=r"model\.lora\.head 'nope' is not a module"):
        apply_lora(_PooledHead(), LoraConfig(head="nope"), (8,))
    # naming a layer as the head works; then nothing is left to adapt
    with pytest.raises(LoraError, match="no Linear or Conv layer besides its head"):
        apply_lora(_PooledHead(), LoraConfig(head="body"), (8,))


def test_target_patterns_choose_the_adapted_layers() -> None:
    model = _lora_cnn(target_modules=["features.*"])
    adapted = {n.split(".lora_")[0] for n in Layout.of(model).names if ".lora_" in n}
    assert adapted == {"features.0", "features.3"}
    with pytest.raises(LoraError, match=r"'layer4\.\*' matches no Linear or Conv.*features\.0"):
        _lora_cnn(target_modules=["layer4.*"])
    with pytest.raises(LoraError, match=r"matches the task head 'head\.3'"):
        _lora_cnn(target_modules=["head.*"])


def test_a_frozen_head_gets_adapters_like_any_layer() -> None:
    layout = Layout.of(_lora_cnn(train_head=False))
    assert not any("modules_to_save" in n for n in layout.names)
    assert any(n.startswith("head.3.lora_") for n in layout.names)


def test_adapters_are_applied_once() -> None:
    with pytest.raises(LoraError, match="already has LoRA adapters"):
        apply_lora(_lora_cnn(), LoraConfig(), SHAPE)


def test_with_lora_leaves_a_model_alone_without_settings() -> None:
    model = build_model("cnn", SHAPE, 3)
    assert with_lora(model, None, SHAPE, 0) is model
    assert all(p.requires_grad for p in model.parameters())


def test_config_takes_lora_settings_strictly() -> None:
    base = {
        "data": {"dataset": "mnist", "partition": "iid", "num_sites": 2},
        "training": {"rounds": 1, "local_steps": 1, "batch_size": 4, "lr": 0.1},
    }
    cfg = parse_config({**base, "model": {"name": "cnn", "lora": {"r": 4, "alpha": 8}}})
    assert cfg.model.lora == LoraConfig(r=4, alpha=8)
    assert parse_config({**base, "model": {"name": "cnn"}}).model.lora is None
    for bad in ({"r": 0}, {"rank": 4}, {"dropout": 1.0}, {"target_modules": []}):
        with pytest.raises(ValueError, match="lora"):
            parse_config({**base, "model": {"name": "cnn", "lora": bad}})
    with pytest.raises(ValidationError):
        LoraConfig(alpha=0)
    fedbn = {"name": "fedbn"}
    with pytest.raises(ValueError, match="'fedbn' keeps each site's normalisation layers"):
        parse_config({**base, "model": {"name": "cnn_bn", "lora": {}}, "algorithm": fedbn})


class _TwoHeads(nn.Module):
    """``fc`` and ``extra.fc``: peft's suffix match would train both as the head."""

    def __init__(self) -> None:
        super().__init__()
        self.extra = nn.Sequential()
        self.extra.add_module("fc", nn.Linear(4, 4))
        self.body = nn.Linear(4, 4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(self.extra(x)))  # type: ignore[no-any-return]


def test_a_head_name_that_ends_another_module_name_is_refused_before_any_change() -> None:
    model = _TwoHeads()
    with pytest.raises(LoraError, match=r"peft would also train 'extra\.fc'"):
        apply_lora(model, LoraConfig(), (4,))
    assert all(p.requires_grad for p in model.parameters())  # untouched
    frozen_head = apply_lora(_TwoHeads(), LoraConfig(train_head=False), (4,))
    assert all(".lora_" in n for n in Layout.of(frozen_head).names)
