"""Where a site trains (``training.device``) and in which precision (``training.precision``).

``auto`` takes the first CUDA GPU when torch sees one and the CPU otherwise, so one config
runs on a laptop and on a hospital's GPU server. Mixed precision is CUDA autocast (bf16, or
fp16 with loss scaling); on the CPU a run is always float32, so CPU results do not depend on
the precision setting.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Literal

import torch

Precision = Literal["fp32", "bf16", "fp16"]
DEVICE_PATTERN = r"^(auto|cpu|cuda|cuda:[0-9]+)$"


def resolve_device(name: str) -> torch.device:
    """The torch device ``name`` (``auto | cpu | cuda | cuda:N``) means on this machine.

    Asking for CUDA where there is none (or for a GPU index past the last) is refused with
    the reason, rather than silently training on the CPU."""
    if not re.match(DEVICE_PATTERN, name):
        raise ValueError(f"device {name!r} is not one of auto, cpu, cuda, cuda:N")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {name!r} asked for, but torch sees no CUDA GPU here "
                f"(torch {torch.__version__}); use device: auto or cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {name!r} asked for, but this machine has "
                f"{torch.cuda.device_count()} CUDA GPU(s)"
            )
    return device


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s parameters (the CPU for a model without any)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


@contextlib.contextmanager
def autocast(device: torch.device, precision: Precision) -> Iterator[None]:
    """Mixed-precision autocast on CUDA; nothing (float32) on the CPU or for ``fp32``."""
    if device.type != "cuda" or precision == "fp32":
        yield
        return
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    with torch.autocast("cuda", dtype=dtype):
        yield


def grad_scaler(device: torch.device, precision: Precision) -> torch.amp.GradScaler | None:
    """A loss scaler for fp16 on CUDA (bf16 has float32's range and needs none)."""
    if device.type == "cuda" and precision == "fp16":
        return torch.amp.GradScaler("cuda")
    return None
