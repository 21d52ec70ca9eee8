"""BatchNorm in a model: FedBN needs it (it keeps those layers local), DP-SGD refuses it.

BatchNorm mixes the examples of a batch, so it has no per-example gradient and Opacus
refuses it; ``model: {batch_norm: group_norm}`` converts every BatchNorm layer to GroupNorm
with Opacus' own fixer (``ModuleValidator.fix``: ``gcd(32, channels)`` groups, fresh affine
parameters), the conversion Opacus recommends for DP training.
"""

from __future__ import annotations

from torch import nn

BATCH_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def has_batch_norm(model: nn.Module) -> bool:
    """Whether any layer of ``model`` is a BatchNorm."""
    return any(isinstance(m, BATCH_NORM_TYPES) for m in model.modules())


def batch_norm_to_group_norm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every BatchNorm replaced by GroupNorm (Opacus' fixer)."""
    from opacus.validators import ModuleValidator  # Opacus loads only when asked for

    fixed: nn.Module = ModuleValidator.fix(model)
    return fixed
