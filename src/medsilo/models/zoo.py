"""medsilo's own small models, sized for CPU federations of hospital-scale datasets.

Binary tasks get a single logit (trained with BCE, as FLamby's Fed-Heart-Disease baseline);
multiclass tasks get one logit per class. Each builder takes the input shape, the number of
outputs and ``model.kwargs`` (e.g. ``mlp``'s ``hidden``); :mod:`medsilo.models.catalog` names
them beside the MONAI networks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


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


def logistic(input_shape: tuple[int, ...], outputs: int, kwargs: Mapping[str, Any]) -> nn.Module:
    return Logistic(math.prod(input_shape), outputs, **kwargs)


def mlp(input_shape: tuple[int, ...], outputs: int, kwargs: Mapping[str, Any]) -> nn.Module:
    return MLP(math.prod(input_shape), outputs, **kwargs)


def _small_cnn(
    name: str,
    input_shape: tuple[int, ...],
    outputs: int,
    batch_norm: bool,
    kwargs: Mapping[str, Any],
) -> nn.Module:
    if len(input_shape) != 3 or input_shape[1] != input_shape[2]:
        raise ValueError(f"model {name!r} needs square image inputs (C, H, W); got {input_shape}")
    return SmallCNN(input_shape[0], input_shape[1], outputs, batch_norm=batch_norm, **kwargs)


def cnn(input_shape: tuple[int, ...], outputs: int, kwargs: Mapping[str, Any]) -> nn.Module:
    return _small_cnn("cnn", input_shape, outputs, batch_norm=False, kwargs=kwargs)


def cnn_bn(input_shape: tuple[int, ...], outputs: int, kwargs: Mapping[str, Any]) -> nn.Module:
    return _small_cnn("cnn_bn", input_shape, outputs, batch_norm=True, kwargs=kwargs)
