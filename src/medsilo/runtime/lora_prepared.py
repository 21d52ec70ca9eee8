"""A prepared federation whose model carries the run's LoRA adapters (docs/lora.md).

The federation is built from the config without ``model.lora`` (the plain backbone), then
its model is adapted and the layout and initial weights (the adapters and the head alone)
are taken from the adapted model.
"""

from __future__ import annotations

from dataclasses import replace

from medsilo.config import RunConfig
from medsilo.data.base import FederatedData
from medsilo.models.lora import apply_lora
from medsilo.models.lora_config import LoraConfig
from medsilo.models.weights import Layout, get_weights
from medsilo.runtime.prepared import PreparedFederation


def prepare_with_lora(cfg: RunConfig, fed: FederatedData | None = None) -> PreparedFederation:
    """``cfg``'s federation with ``cfg.model.lora`` applied to its model (which must be set)."""
    lora = cfg.model.lora
    if lora is None:
        raise ValueError("the run config has no model.lora section")
    return adapted(PreparedFederation.build(without_lora(cfg), fed), lora, cfg.seed)


def without_lora(cfg: RunConfig) -> RunConfig:
    """``cfg`` for the plain backbone."""
    return cfg.model_copy(update={"model": cfg.model.model_copy(update={"lora": None})})


def adapted(prep: PreparedFederation, lora: LoraConfig, seed: int) -> PreparedFederation:
    """``prep`` with adapters injected into its model (in place) and the layout and initial
    weights of the adapted model."""
    model = apply_lora(prep.model, lora, prep.fed.input_shape, seed)
    return replace(prep, model=model, layout=Layout.of(model), initial_weights=get_weights(model))
