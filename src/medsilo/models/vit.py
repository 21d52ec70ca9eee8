"""MONAI's ViT as a classifier that returns logits alone.

MONAI's ``ViT`` returns ``(logits, hidden states of every block)`` and, by default, squashes
its logits through ``tanh``; medsilo's losses take one tensor of raw logits. The subclass
keeps MONAI's parameter names, so a MONAI ViT ``state_dict`` loads into it as is.

MONAI's transformer blocks also always create a ``norm_cross_attn`` LayerNorm, used only
with cross-attention (which a classifier has not): it never gets a gradient, so it is frozen
(DP-SGD's per-example clipping expects a gradient for every trainable parameter).
"""

from __future__ import annotations

from typing import Any

import torch
from monai.networks.nets.vit import ViT


class ViTClassifier(ViT):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for block in self.blocks:
            if not block.with_cross_attention:
                block.norm_cross_attn.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits, _hidden = super().forward(x)  # type: ignore[no-untyped-call]
        return logits  # type: ignore[no-any-return]
