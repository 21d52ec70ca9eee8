"""Pretrained weights, only ever from a local file (``model: {weights: path}``).

medsilo never downloads weights: a hospital's model must be the bytes its engineers
checked, and a run must say which bytes it started from. The file is a PyTorch ``state_dict``
saved with ``torch.save`` (``.pt``/``.pth``; read with ``weights_only=True``, so no code in it
runs; a checkpoint dict holding the state under ``"state_dict"`` is accepted too) or a
safetensors file (``.safetensors``). Its SHA-256 goes into the run's ``summary.json``
(``model_weights_sha256``).

Loading is strict by default: every tensor of the model must be in the file with its shape,
and nothing else. ``weights_strict: false`` loads what fits and leaves the rest as built (a
pretrained backbone whose classifier head was trained for other classes), logging which
keys it skipped.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".pt", ".pth", ".safetensors")
SHOWN_KEYS = 8  # keys listed per kind of problem; the rest are counted


@dataclass(frozen=True)
class WeightsFit:
    """How a file's tensors fit a model's ``state_dict``."""

    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    #: ``key: file shape vs model shape``
    mismatched: tuple[str, ...]

    @property
    def perfect(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self) -> str:
        parts = []
        for what, keys in (
            ("missing from the file", self.missing),
            ("in the file but not in the model", self.unexpected),
            ("shaped differently", self.mismatched),
        ):
            if keys:
                more = f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
                parts.append(f"{what}: {', '.join(keys[:SHOWN_KEYS])}{more}")
        return "; ".join(parts)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of weights file ``path``; ``ValueError`` naming the file otherwise."""
    if path.suffix not in WEIGHT_SUFFIXES:
        raise ValueError(
            f"model.weights {str(path)!r}: expected a {', '.join(WEIGHT_SUFFIXES)} file"
        )
    if not path.is_file():
        raise ValueError(f"model.weights {str(path)!r}: no such file")
    raw = path.read_bytes()
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load as load_safetensors

            loaded: object = load_safetensors(raw)
        else:
            loaded = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as err:  # a corrupt file, or a pickle that is not plain tensors
        raise ValueError(f"model.weights {str(path)!r} cannot be read: {err}") from None
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
    ):
        raise ValueError(
            f"model.weights {str(path)!r} is not a state_dict (a mapping of names to tensors, "
            "as torch.save(model.state_dict(), path) writes)"
        )
    return dict(loaded)


def fit_of(model: nn.Module, state: Mapping[str, torch.Tensor]) -> WeightsFit:
    own = model.state_dict()
    return WeightsFit(
        missing=tuple(k for k in own if k not in state),
        unexpected=tuple(k for k in state if k not in own),
        mismatched=tuple(
            f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
            for k, v in own.items()
            if k in state and state[k].shape != v.shape
        ),
    )


def load_local_weights(model: nn.Module, label: str, path: Path, strict: bool = True) -> None:
    """Load weights file ``path`` into ``model`` (named ``label`` in messages)."""
    state = read_state_dict(path)
    fit = fit_of(model, state)
    if strict and not fit.perfect:
        raise ValueError(
            f"model.weights {str(path)!r} does not fit model {label}: {fit.describe()} "
            "(set model.weights_strict: false to load only the tensors that fit, e.g. a "
            "backbone whose head was trained for other classes)"
        )
    own = model.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
    if not fitting:
        raise ValueError(
            f"model.weights {str(path)!r}: no tensor of it fits model {label} ({fit.describe()})"
        )
    model.load_state_dict(fitting, strict=False)
    if not fit.perfect:
        log.warning("model.weights %s: skipped what does not fit: %s", path, fit.describe())
