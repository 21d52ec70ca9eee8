"""Weights travel as arrays of any shape, a 0-d parameter (a learnt temperature) included."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from medsilo.models.weights import get_weights, set_weights


class Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)
        self.temperature = nn.Parameter(torch.tensor(2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) / self.temperature  # type: ignore[no-any-return]


def test_a_zero_dimensional_parameter_round_trips() -> None:
    model = Scaled()
    weights = get_weights(model)
    assert sorted(w.shape for w in weights) == [(), (1,), (1, 3)]
    weights[0] = np.array(0.5, dtype=np.float32)
    set_weights(model, weights)
    assert float(model.temperature) == 0.5
