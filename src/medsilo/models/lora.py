"""LoRA fine-tuning of a frozen backbone (docs/lora.md).

:func:`apply_lora` injects peft's low-rank adapters into a built (and, for a foundation
model, already loaded) model in place: the module keeps its class and its ``forward``, so
``model(x)`` works on plain tensors as before. Everything but the adapters and the task head
is frozen; :mod:`medsilo.models.weights` then transmits only the trainable tensors, so the
adapters (and the head) are all that is trained, sent, compressed, securely aggregated and
counted in bytes. The frozen backbone's BatchNorm layers become
:class:`~medsilo.models.frozen_norm.FrozenBatchNorm`, fixed at their loaded statistics.

The adapters' initial values are drawn from ``seed`` (``B`` starts at zero, so the adapted
model starts as the backbone), and the same seed gives every site and the coordinator the
same model.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fnmatch import fnmatchcase

import torch
from torch import nn

from medsilo.models.frozen_norm import freeze_batch_norms
from medsilo.models.lora_config import LoraConfig

#: Layers peft can put an adapter on.
ADAPTABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: Layers that can be a task head (trained in full, so any linear map of the features).
HEAD_LAYERS = (*ADAPTABLE, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
#: How many layer names an error lists.
LISTED = 8


class LoraError(ValueError):
    """The model or the ``model.lora`` settings do not allow LoRA; the message says why."""


def with_lora(
    model: nn.Module, cfg: LoraConfig | None, input_shape: tuple[int, ...], seed: int
) -> nn.Module:
    """``model`` with adapters when ``cfg`` asks for them (:func:`apply_lora`), else as is:
    what every place that builds the run's model calls on it."""
    if cfg is None:
        return model
    return apply_lora(model, cfg, input_shape, seed)


def apply_lora(
    model: nn.Module, cfg: LoraConfig, input_shape: tuple[int, ...], seed: int = 0
) -> nn.Module:
    """Freeze ``model`` and inject LoRA adapters into it in place (see the module docstring).

    ``input_shape`` is one example's shape (no batch axis): when ``cfg.head`` is not given,
    one forward pass of a zero example finds the task head."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import inject_adapter_in_model
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = dict(model.named_modules())
    if any(isinstance(m, BaseTunerLayer) for m in layers.values()):
        raise LoraError("the model already has LoRA adapters; apply them once")
    head = cfg.head if cfg.head is not None else find_head(model, input_shape)
    if head not in layers:
        raise LoraError(f"model.lora.head {head!r} is not a module of the model; {_some(layers)}")
    # peft picks modules_to_save by name suffix: no other module may end like the head.
    alike = [n for n in layers if n != head and n.endswith(head)]
    if cfg.train_head and alike:
        raise LoraError(
            f"the task head {head!r} trains in full, but peft would also train {alike[0]!r} "
            "(its name ends the same way); wrap the head so that its name is unique"
        )
    targets = target_layers(model, cfg, head)
    freeze_batch_norms(model)
    peft_cfg = PeftLoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        # An anchored alternation of full names: peft's plain names also match suffixes.
        target_modules="^(?:" + "|".join(re.escape(t) for t in targets) + ")$",
        modules_to_save=[head] if cfg.train_head else None,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return inject_adapter_in_model(peft_cfg, model)


def find_head(model: nn.Module, input_shape: tuple[int, ...]) -> str:
    """The task head: the last Linear or Conv layer run whose output size (axis 1: features
    or channels) is the model's (the first element of a tuple output), found by one forward
    pass of a zero example."""
    order: list[tuple[str, int]] = []
    handles = [
        module.register_forward_hook(_recorder(name, order))
        for name, module in model.named_modules()
        if isinstance(module, HEAD_LAYERS)
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, *input_shape))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    if isinstance(out, tuple | list) and out:  # MONAI's ViT: (logits, hidden states)
        out = out[0]
    if not isinstance(out, torch.Tensor) or out.ndim < 2:
        raise LoraError(
            "cannot find the model's task head: its output is not a (batch, outputs, ...) "
            "tensor; name the head with model.lora.head"
        )
    outputs = int(out.shape[1])
    heads = [name for name, size in order if size == outputs]
    if not heads:
        ran = [name for name, _ in order][-LISTED:]
        raise LoraError(
            f"cannot find the model's task head: no Linear or Conv layer produces its "
            f"{outputs} outputs (last layers run: {', '.join(ran) or 'none'}); name the head "
            "with model.lora.head"
        )
    return heads[-1]


def target_layers(model: nn.Module, cfg: LoraConfig, head: str) -> list[str]:
    """Names of the layers that get adapters: the Linear and Conv layers the patterns match
    (default: all), without the head when it trains in full."""
    adaptable = [n for n, m in model.named_modules() if isinstance(m, ADAPTABLE)]
    if cfg.target_modules is None:
        chosen = [n for n in adaptable if n != head or not cfg.train_head]
    else:
        chosen = []
        for pattern in cfg.target_modules:
            matched = [n for n in adaptable if fnmatchcase(n, pattern)]
            if not matched:
                raise LoraError(
                    f"model.lora.target_modules pattern {pattern!r} matches no Linear or Conv "
                    f"layer; the model's: {_listing(adaptable)}"
                )
            if cfg.train_head and head in matched:
                raise LoraError(
                    f"model.lora.target_modules pattern {pattern!r} matches the task head "
                    f"{head!r}, which trains in full (train_head); exclude it or set "
                    "train_head: false"
                )
            chosen += [n for n in matched if n not in chosen]
    if not chosen:
        raise LoraError("the model has no Linear or Conv layer besides its head to adapt")
    return chosen


def _recorder(
    name: str, order: list[tuple[str, int]]
) -> Callable[[nn.Module, object, object], None]:
    """A forward hook noting that layer ``name`` ran and its output size."""

    def record(module: nn.Module, args: object, out: object) -> None:
        if isinstance(out, torch.Tensor) and out.ndim >= 2:
            order.append((name, int(out.shape[1])))

    return record


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED])
    return shown + (f" (and {len(names) - LISTED} more)" if len(names) > LISTED else "")


def _some(layers: dict[str, nn.Module]) -> str:
    named = [n for n, m in layers.items() if n and isinstance(m, HEAD_LAYERS)]
    return f"its Linear and Conv layers: {_listing(named)}"
