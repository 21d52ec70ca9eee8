"""Moving weights between torch modules and the runtime-neutral ``Weights`` list.

Only floating-point ``state_dict`` entries travel (parameters and BatchNorm running
statistics); integer book-keeping buffers such as ``num_batches_tracked`` stay local.

A model with frozen parameters (a backbone fine-tuned through LoRA adapters,
:mod:`medsilo.models.lora`) transmits its trainable parameters alone: the frozen backbone,
its buffers included, is the same at every site and stays there. :func:`transmitted`
makes that one selection for :class:`Layout`, :func:`get_weights` and :func:`set_weights`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from medsilo.types import Weights


@dataclass(frozen=True)
class Layout:
    """Names of the transmitted entries, which are trainable, and which belong to norm layers."""

    names: tuple[str, ...]
    trainable: tuple[bool, ...]
    norm_layer: tuple[bool, ...]

    @staticmethod
    def of(model: nn.Module) -> Layout:
        params = {n for n, p in model.named_parameters() if p.requires_grad}
        norm_prefixes = {
            n
            for n, m in model.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm | nn.LayerNorm | nn.GroupNorm)
        }
        names = [n for n, _ in transmitted(model)]
        return Layout(
            names=tuple(names),
            trainable=tuple(n in params for n in names),
            norm_layer=tuple(n.rsplit(".", 1)[0] in norm_prefixes for n in names),
        )


def transmitted(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """The ``state_dict`` entries that travel, by name: every floating entry, or only the
    trainable parameters when some parameters are frozen."""
    state = model.state_dict()
    trainable = {n: p.requires_grad for n, p in model.named_parameters()}
    if all(trainable.values()):
        return [(n, t) for n, t in state.items() if t.is_floating_point()]
    return [(n, t) for n, t in state.items() if trainable.get(n, False)]


def get_weights(model: nn.Module) -> Weights:
    return [t.detach().cpu().numpy().copy() for _, t in transmitted(model)]


def set_weights(model: nn.Module, weights: Weights) -> None:
    entries = [t for _, t in transmitted(model)]
    if len(entries) != len(weights):
        raise ValueError(f"model has {len(entries)} weight tensors, got {len(weights)}")
    with torch.no_grad():
        for target, value in zip(entries, weights, strict=True):
            if tuple(target.shape) != tuple(value.shape):
                raise ValueError(f"shape mismatch: model {tuple(target.shape)} vs {value.shape}")
            target.copy_(torch.from_numpy(np.require(value, requirements="C")))


def shape_mismatch(expected: Weights, got: Weights) -> str | None:
    """Why ``got`` cannot be weights of the model whose weights are ``expected``, or ``None``.

    Used where saved weights are about to be read as the configured model's (an audit, a
    contribution re-run): a model swapped after the config was written shows here."""
    if len(got) != len(expected):
        return f"{len(got)} weight tensors where the model has {len(expected)}"
    for i, (want, have) in enumerate(zip(expected, got, strict=True)):
        if tuple(want.shape) != tuple(have.shape):
            return (
                f"tensor {i} is shaped {tuple(have.shape)} where the model has {tuple(want.shape)}"
            )
    return None
