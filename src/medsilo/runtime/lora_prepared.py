"""A prepared federation whose model carries the run's LoRA adapters (docs/lora.md).

:meth:`PreparedFederation.build` builds the plain model; this builds the federation from
the config without ``model.lora`` and adapts its model, then takes the layout and the
initial weights (the adapters and the head alone) from the adapted model.
"""

from __future__ import annotations

from dataclasses import replace

from medsilo.config import RunConfig
from medsilo.data.base import FederatedData
from medsilo.models.lora import apply_lora
from medsilo.models.weights import Layout, get_weights
from medsilo.runtime.prepared import PreparedFederation


def prepare_with_lora(cfg: RunConfig, fed: FederatedData | None = None) -> PreparedFederation:
    """``cfg``'s federation with ``cfg.model.lora`` applied to its model (which must be set)."""
    lora = cfg.model.lora
    if lora is None:
        raise ValueError("the run config has no model.lora section")
    plain = cfg.model_copy(update={"model": cfg.model.model_copy(update={"lora": None})})
    prep = PreparedFederation.build(plain, fed)
    model = apply_lora(prep.model, lora, prep.fed.input_shape, cfg.seed)
    return replace(prep, model=model, layout=Layout.of(model), initial_weights=get_weights(model))
