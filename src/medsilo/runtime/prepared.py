"""A federation made ready to run: data as tensors, the initial model and its layout.

Built once and shared by the engine and the baselines so both start from the same
initial weights and see the same data for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from medsilo.config import RunConfig
from medsilo.data.base import FederatedData
from medsilo.data.registry import build_federation
from medsilo.models.weights import Layout, get_weights
from medsilo.models.zoo import build_model
from medsilo.training.tensors import TensorData
from medsilo.types import Weights


@dataclass
class PreparedFederation:
    fed: FederatedData
    model: nn.Module
    layout: Layout
    initial_weights: Weights
    train: dict[str, TensorData]
    test: dict[str, TensorData]
    pooled_test: TensorData

    @property
    def binary(self) -> bool:
        return self.fed.task == "binary"

    @staticmethod
    def build(cfg: RunConfig, fed: FederatedData | None = None) -> PreparedFederation:
        fed = fed if fed is not None else build_federation(cfg.data, cfg.seed)
        model = build_model(cfg.model.name, fed.input_shape, fed.num_classes, seed=cfg.seed)
        binary = fed.task == "binary"
        return PreparedFederation(
            fed=fed,
            model=model,
            layout=Layout.of(model),
            initial_weights=get_weights(model),
            train={s.name: TensorData.of(s.train, binary) for s in fed.sites},
            test={s.name: TensorData.of(s.test, binary) for s in fed.sites},
            pooled_test=TensorData.of(fed.test, binary),
        )
