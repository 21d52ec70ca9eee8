"""The small CNN of docs/ccpgd.md §10, the second pass's image model.

Two 3x3 convolutions with 16 and 32 channels, each followed by ReLU and 2x2 max-pooling,
then one linear layer. It is smaller than the catalog's ``cnn`` (5x5 kernels, two dense
layers) on purpose: the pre-registered quick and standard runs must fit a 2-core CPU, and
§10 fixed this architecture before any run. It is named through ``model.factory``
(``medsilo.bench.paper_cnn:build``) so the bench needs no catalog entry of its own.
"""

from __future__ import annotations

import torch
from torch import nn


class PaperCNN(nn.Module):
    def __init__(self, channels: int, size: int, out: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(32 * (size // 4) * (size // 4), out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))  # type: ignore[no-any-return]


def build(input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """``model.factory`` entry point: square images ``(C, H, W)`` only."""
    if len(input_shape) != 3 or input_shape[1] != input_shape[2]:
        raise ValueError(f"the paper CNN needs square image inputs (C, H, W); got {input_shape}")
    return PaperCNN(input_shape[0], input_shape[1], num_outputs)
