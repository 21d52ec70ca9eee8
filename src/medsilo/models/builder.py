"""Build the model a run trains: a named one, or the user's own, checked against the task.

The user's own model is a function named by ``model.factory`` (``"my_pkg.models:build"``),
called with keyword arguments only::

    build(input_shape=(C, H, W), num_outputs=k, **model.kwargs) -> torch.nn.Module

``input_shape`` is one example's shape (no batch dimension); ``num_outputs`` is what the
task needs (:func:`medsilo.training.task.output_size`: 1 logit for a binary task, else the
number of classes, labels or targets; for segmentation, the channels of the output map,
background included). The module returns raw logits (no sigmoid/softmax).

Every model is built under ``torch.manual_seed(seed)`` in a forked RNG (the same initial
weights for a seed, and the caller's random streams untouched), then: local weights loaded
(``model.weights``), BatchNorm converted (``model.batch_norm: group_norm``), and one forward
pass checked against the task (:func:`medsilo.models.outputs.check_outputs`). Every mistake
is a ``ValueError`` naming the model, raised before a run writes anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from medsilo.data.base import Task
from medsilo.imports import load_object
from medsilo.models.batch_norm import batch_norm_to_group_norm
from medsilo.models.catalog import NAMED_MODELS
from medsilo.models.local_weights import load_local_weights
from medsilo.models.lora import with_lora
from medsilo.models.outputs import check_outputs
from medsilo.models.spec import ModelConfig
from medsilo.training.task import output_size


def default_task(num_classes: int) -> Task:
    """The task of a classifier told only its number of classes (two: binary)."""
    return "binary" if num_classes == 2 else "multiclass"


def build_model(
    model: ModelConfig | str,
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    task: Task | None = None,
    seed: int = 0,
) -> nn.Module:
    """A freshly initialised model for inputs ``input_shape`` and the ``task`` (default: a
    classifier of ``num_classes`` classes); a string is a ``model.name``."""
    cfg = ModelConfig(name=model) if isinstance(model, str) else model
    task = task or default_task(num_classes)
    shape = tuple(input_shape)
    outputs = output_size(task, num_classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if cfg.factory is not None:
            net = build_user_model(cfg.factory, shape, outputs, cfg.kwargs)
        else:
            assert cfg.name is not None  # ModelConfig has one of name and factory
            net = build_named_model(cfg.name, shape, outputs, cfg.kwargs)
    weights = cfg.weights_path
    if weights is not None:
        load_local_weights(net, cfg.label, weights, cfg.weights_strict)
    if cfg.batch_norm == "group_norm":
        net = batch_norm_to_group_norm(net)
    check_outputs(net, cfg.label, shape, num_classes, task)
    return with_lora(net, cfg.lora, shape, seed)


def build_named_model(
    name: str, input_shape: tuple[int, ...], outputs: int, kwargs: Mapping[str, Any]
) -> nn.Module:
    try:
        return NAMED_MODELS[name].build(input_shape, outputs, kwargs)
    except TypeError as err:  # a keyword the model does not take
        raise ValueError(
            f"model {name!r} cannot be built with model.kwargs {dict(kwargs)}: {err}"
        ) from None


def build_user_model(
    path: str, input_shape: tuple[int, ...], outputs: int, kwargs: Mapping[str, Any]
) -> nn.Module:
    """Call the factory ``path`` names and check that it returned a module."""
    factory = load_object(path, "model.factory")
    if not callable(factory):
        raise ValueError(f"model.factory {path!r} is {type(factory).__name__}, not callable")
    try:
        net = factory(input_shape=input_shape, num_outputs=outputs, **kwargs)
    except TypeError as err:
        raise ValueError(
            f"model.factory {path!r} cannot be called as build(input_shape=..., "
            f"num_outputs=..., **model.kwargs) with kwargs {sorted(kwargs)}: {err}"
        ) from None
    if not isinstance(net, nn.Module):
        raise ValueError(
            f"model.factory {path!r} returned {type(net).__name__}; it must return a "
            "torch.nn.Module"
        )
    return net
