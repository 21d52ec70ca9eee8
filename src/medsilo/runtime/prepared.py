"""A federation made ready to run: data as samples, the initial model and its layout.

Built once and shared by the engine and the baselines so both start from the same
initial weights and see the same data for a given seed. The model lives on the configured
device (``training.device``); weights travel as CPU arrays whatever the device.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from medsilo.config import RunConfig
from medsilo.data.base import FederatedData
from medsilo.data.registry import build_federation
from medsilo.models.builder import build_model
from medsilo.models.weights import Layout, get_weights
from medsilo.training.device import resolve_device
from medsilo.training.samples import Samples
from medsilo.training.site_samples import samples_of
from medsilo.types import Weights


@dataclass
class PreparedFederation:
    fed: FederatedData
    model: nn.Module
    layout: Layout
    initial_weights: Weights
    train: dict[str, Samples]
    test: dict[str, Samples]
    pooled_test: Samples

    @property
    def binary(self) -> bool:
        return self.fed.task == "binary"

    @staticmethod
    def build(cfg: RunConfig, fed: FederatedData | None = None) -> PreparedFederation:
        fed = fed if fed is not None else build_federation(cfg.data, cfg.seed)
        model = build_model(
            cfg.model, fed.input_shape, fed.num_classes, task=fed.task, seed=cfg.seed
        ).to(resolve_device(cfg.training.device))
        workers = cfg.training.loader_workers
        return PreparedFederation(
            fed=fed,
            model=model,
            layout=Layout.of(model),
            initial_weights=get_weights(model),
            train={s.name: samples_of(s.train, fed.task, workers) for s in fed.sites},
            test={s.name: samples_of(s.test, fed.task, workers) for s in fed.sites},
            pooled_test=samples_of(fed.test, fed.task, workers),
        )
