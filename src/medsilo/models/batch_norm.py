"""BatchNorm in a model: FedBN needs it (it keeps those layers local), DP-SGD refuses it.

BatchNorm mixes the examples of a batch, so it has no per-example gradient and Opacus
refuses it; ``model: {batch_norm: group_norm}`` converts every BatchNorm layer to GroupNorm
with Opacus' own fixer (``ModuleValidator.fix``: ``gcd(32, channels)`` groups, fresh affine
parameters), the conversion Opacus recommends for DP training.

Opacus' per-example hooks hand each layer's output on as a view that autograd forbids
modifying in place, which networks do: MONAI's ``ReLU(inplace=True)`` and its ResNet
blocks' ``out += residual`` on a norm layer's output. The conversion therefore also makes
activations out-of-place and wraps each new GroupNorm in :class:`CopiedOutput` (its
parameters then live under ``<name>.layer.``).
"""

from __future__ import annotations

import torch
from torch import nn

BATCH_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def has_batch_norm(model: nn.Module) -> bool:
    """Whether any layer of ``model`` is a BatchNorm."""
    return any(isinstance(m, BATCH_NORM_TYPES) for m in model.modules())


class CopiedOutput(nn.Module):
    """``layer``, returning a copy of its output, which the network may modify in place."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x).clone()  # type: ignore[no-any-return]


def batch_norm_to_group_norm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every BatchNorm replaced by GroupNorm (Opacus' fixer),
    ready for DP-SGD (see the module's docstring)."""
    from opacus.validators import ModuleValidator  # Opacus loads only when asked for

    converted = {name for name, m in model.named_modules() if isinstance(m, BATCH_NORM_TYPES)}
    fixed: nn.Module = ModuleValidator.fix(model)
    for name in converted:
        parent, _, child = name.rpartition(".")
        holder = fixed.get_submodule(parent)
        holder.add_module(child, CopiedOutput(holder.get_submodule(child)))
    for module in fixed.modules():
        if isinstance(getattr(module, "inplace", None), bool):
            module.inplace = False  # type: ignore[assignment]  # a plain attribute
    return fixed
