"""BatchNorm of a frozen backbone, fixed at its loaded statistics.

A backbone frozen for LoRA keeps its BatchNorm layers as they were loaded: normalising with
the loaded running statistics in training as in evaluation makes each layer a fixed
per-channel affine map. So the statistics never change (they need not travel, and every
site holds the same ones), training sees the same network that evaluation does, and each
example's output depends on that example alone, which is what DP-SGD's per-example
gradients need (a BatchNorm in training mode mixes the examples of a batch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FrozenBatchNorm(nn.Module):
    """A BatchNorm layer in evaluation mode for good: statistics and affine are buffers.

    The buffers keep the BatchNorm's state names (``weight``, ``bias``, ``running_mean``,
    ``running_var``), so a backbone's saved state loads into the frozen layer unchanged."""

    weight: torch.Tensor
    bias: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, norm: nn.modules.batchnorm._BatchNorm) -> None:
        super().__init__()
        if norm.running_mean is None or norm.running_var is None:
            raise ValueError("a BatchNorm without running statistics cannot be frozen")
        channels = norm.num_features
        self.eps = norm.eps
        self.register_buffer("running_mean", norm.running_mean.detach().clone())
        self.register_buffer("running_var", norm.running_var.detach().clone())
        weight = norm.weight if norm.affine else None
        bias = norm.bias if norm.affine else None
        self.register_buffer(
            "weight", torch.ones(channels) if weight is None else weight.detach().clone()
        )
        self.register_buffer(
            "bias", torch.zeros(channels) if bias is None else bias.detach().clone()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
        )


def freeze_batch_norms(model: nn.Module) -> int:
    """Replace every BatchNorm of ``model`` that tracks running statistics by a
    :class:`FrozenBatchNorm`, in place; returns how many were replaced."""
    found = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None
    ]
    for name, module in found:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, FrozenBatchNorm(module))
    return len(found)
