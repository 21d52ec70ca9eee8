"""The ``model:`` section of a run config: a named model or the user's own factory.

``name`` picks one of :data:`~medsilo.models.catalog.MODEL_NAMES`; ``factory`` is the import
path of the user's own builder (:mod:`medsilo.models.builder` says how it is called); exactly
one of them is given (neither means ``name: logistic``). ``kwargs`` go to the builder
(overriding a named network's defaults). ``weights`` is a local file of pretrained weights
(:mod:`medsilo.models.local_weights`): anything that would download, ``pretrained: true`` or a
URL, is refused here, when the config is read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medsilo.imports import ImportPath
from medsilo.models.catalog import MODEL_NAMES, NAMED_MODELS
from medsilo.models.lora_config import LoraConfig

DOWNLOAD_REFUSED = (
    "medsilo never downloads weights: they are read only from a local file. Download the "
    "file yourself from its publisher, check it, and give its path: "
    "model: {weights: path/to/file.pt} (a torch.save'd state_dict, .pt or .pth) or "
    "path/to/file.safetensors; its SHA-256 is recorded in the run's summary.json"
)
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(
        default=None, description=f"one of {', '.join(MODEL_NAMES)} (default logistic)"
    )
    factory: ImportPath | None = Field(
        default=None,
        description="import path 'package.module:build' of the user's own model builder, "
        "called as build(input_shape=..., num_outputs=..., **kwargs)",
    )
    kwargs: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of the builder (docs/models.md)"
    )
    weights: str | None = Field(
        default=None, description="local file of pretrained weights: .pt, .pth or .safetensors"
    )
    weights_strict: bool = Field(
        default=True,
        description="false: load only the tensors of the file that fit, skip the rest (logged)",
    )
    pretrained: bool = Field(
        default=False, description="refused when true: weights come from a local file only"
    )
    batch_norm: Literal["keep", "group_norm"] = Field(
        default="keep",
        description="group_norm: replace BatchNorm by GroupNorm (Opacus' fixer), for DP-SGD",
    )
    lora: LoraConfig | None = Field(None, description="fine-tune through LoRA (docs/lora.md)")

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("name") is None and data.get("factory") is None:
            return {**data, "name": "logistic"}
        return data

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if self.name is not None and self.factory is not None:
            raise ValueError(
                "give either name (a built-in or MONAI model) or factory (your own), not both"
            )
        if self.name is not None and self.name not in NAMED_MODELS:
            raise ValueError(f"unknown model {self.name!r}; choose one of {', '.join(MODEL_NAMES)}")
        if self.pretrained or (self.name is not None and self.kwargs.get("pretrained")):
            raise ValueError(f"pretrained: true would download weights; {DOWNLOAD_REFUSED}")
        if self.weights is not None and URL.match(self.weights):
            raise ValueError(f"weights {self.weights!r} is a URL; {DOWNLOAD_REFUSED}")
        return self

    @property
    def source(self) -> str:
        """The model's name, or its factory's import path (what a summary records)."""
        source = self.name if self.factory is None else self.factory
        assert source is not None  # validation leaves one of name and factory
        return source

    @property
    def label(self) -> str:
        """How messages name the model: ``'resnet18'`` or ``factory 'pkg.mod:build'``."""
        return repr(self.name) if self.factory is None else f"factory {self.factory!r}"

    @property
    def weights_path(self) -> Path | None:
        return None if self.weights is None else Path(self.weights)

    def static_batch_norm(self) -> bool | None:
        """Whether the model has BatchNorm, as far as the config says; ``None`` when only the
        built model can tell (a factory, or ``kwargs`` that set a network's ``norm``)."""
        if self.batch_norm == "group_norm" or self.lora is not None:
            return False  # converted, or frozen at its loaded statistics (models.frozen_norm)
        if self.name is None or "norm" in self.kwargs:
            return None
        return NAMED_MODELS[self.name].batch_norm

    def without_weights(self) -> ModelConfig:
        """The same architecture, built without reading ``weights``: what a deployed site
        builds (the coordinator sends it the global weights; the file is the coordinator's).

        Under LoRA only the adapters and the head travel, so the frozen backbone must come
        from the site's own copy of the same file: the path is kept."""
        if self.lora is not None:
            return self
        return self.model_copy(update={"weights": None})

    def anchored_at(self, folder: Path) -> ModelConfig:
        """The section with a relative ``weights`` path read from ``folder`` (the config
        file's folder), as the data section's paths are."""
        path = self.weights_path
        if path is None or path.is_absolute():
            return self
        return self.model_copy(update={"weights": str(folder / path)})
