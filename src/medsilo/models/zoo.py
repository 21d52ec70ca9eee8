"""Small reference models sized for CPU federations of hospital-scale datasets.

Binary tasks get a single logit (trained with BCE, as FLamby's Fed-Heart-Disease baseline);
multiclass tasks get one logit per class.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

ModelName = Literal["logistic", "mlp", "cnn", "cnn_bn"]
MODEL_NAMES: tuple[str, ...] = ("logistic", "mlp", "cnn", "cnn_bn")


def has_batch_norm(name: str) -> bool:
    """Whether model ``name`` has BatchNorm layers (FedBN needs them; DP-SGD refuses them)."""
    return name == "cnn_bn"


def output_size(num_classes: int) -> int:
    return 1 if num_classes == 2 else num_classes


class Logistic(nn.Module):
    """Logistic (softmax) regression on flattened inputs."""

    def __init__(self, in_features: int, out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))  # type: ignore[no-any-return]


class MLP(nn.Module):
    def __init__(self, in_features: int, out: int, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # type: ignore[no-any-return]


class SmallCNN(nn.Module):
    """Two conv blocks + two dense layers; optional BatchNorm (what FedBN keeps local)."""

    def __init__(self, channels: int, size: int, out: int, batch_norm: bool = False) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, 5, padding=2)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            layers += [nn.ReLU(), nn.MaxPool2d(2)]
            return layers

        self.features = nn.Sequential(*block(channels, 16), *block(16, 32))
        flat = 32 * (size // 4) * (size // 4)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(), nn.Linear(128, out)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # type: ignore[no-any-return]


def build_model(
    name: str, input_shape: tuple[int, ...], num_classes: int, seed: int = 0
) -> nn.Module:
    """Build a freshly initialised model; ``seed`` makes the initial global weights reproducible."""
    out = output_size(num_classes)
    in_features = math.prod(input_shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if name == "logistic":
            return Logistic(in_features, out)
        if name == "mlp":
            return MLP(in_features, out)
        if name in ("cnn", "cnn_bn"):
            if len(input_shape) != 3 or input_shape[1] != input_shape[2]:
                raise ValueError(
                    f"model {name!r} needs square image inputs (C, H, W); got {input_shape}"
                )
            return SmallCNN(input_shape[0], input_shape[1], out, batch_norm=has_batch_norm(name))
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
