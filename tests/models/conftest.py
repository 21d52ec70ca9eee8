"""A user's own model module, written to a temporary folder on ``sys.path``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

USER_MODELS = """
import torch
from torch import nn


class Head(nn.Module):
    def __init__(self, features, outputs, norm):
        super().__init__()
        layers = [nn.Flatten(), nn.Linear(features, 8)]
        if norm:
            layers.append(nn.BatchNorm1d(8))
        layers += [nn.ReLU(), nn.Linear(8, outputs)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def build(input_shape, num_outputs, norm=False):
    features = 1
    for side in input_shape:
        features *= side
    return Head(features, num_outputs, norm)


def wrong_outputs(input_shape, num_outputs):
    return build(input_shape, num_outputs + 1)


def not_a_module(input_shape, num_outputs):
    return "a model"


def positional_only(shape, outputs, /):
    return build(shape, outputs)


NOT_CALLABLE = 3
"""


@pytest.fixture
def user_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The module name of a user's model file (``my_models_<n>``), importable."""
    name = f"my_models_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(USER_MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)
