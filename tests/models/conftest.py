"""A user's own model module, written to a temporary folder on ``sys.path``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from medsilo.data.base import ArrayData, FederatedData, SiteData

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


def image_federation(
    shape: tuple[int, ...] = (1, 8, 8), sites: int = 2, n: int = 16
) -> FederatedData:
    """Random images whose label (0 or 1) shifts every pixel, ``n`` rows per site."""
    rng = np.random.default_rng(0)
    parts = []
    for i in range(sites):
        y = rng.integers(0, 2, size=n).astype(np.int64)
        x = rng.normal(size=(n, *shape)).astype(np.float32) + y.reshape(-1, *[1] * len(shape))
        cut = n * 3 // 4
        parts.append(SiteData(f"s{i}", ArrayData(x[:cut], y[:cut]), ArrayData(x[cut:], y[cut:])))
    test = ArrayData.concat([s.test for s in parts])
    return FederatedData("images", parts, test, 2, "binary")
