"""``model.lora:`` in a run config: fine-tune a frozen backbone through LoRA adapters
(docs/lora.md).

Kept apart from :mod:`medsilo.models.lora` so that :mod:`medsilo.config` can import the
settings without loading ``peft``, which only LoRA runs need.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LoraConfig(BaseModel):
    """Low-rank adapters (Hu et al. 2022) on a frozen backbone; only they (and the task head)
    train and travel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    r: int = Field(8, ge=1, description="rank of each adapter's two low-rank factors")
    alpha: int = Field(
        16, ge=1, description="scale of the adapters' output: the update is alpha / r * B A"
    )
    dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="dropout on the adapters' input; above 0 it draws from torch's global "
        "random generator, so runs are no longer bit-reproducible",
    )
    target_modules: list[str] | None = Field(
        None,
        min_length=1,
        description="shell-style patterns on dotted module names (e.g. 'layer4.*') choosing "
        "the Linear and Conv layers that get adapters; default: every one but the task head",
    )
    train_head: bool = Field(
        True,
        description="the task head is new for the hospital's task: it trains in full and "
        "travels with the adapters (peft's modules_to_save); false treats it as any other "
        "layer (adapters when target_modules chooses it, else frozen as loaded)",
    )
    head: str | None = Field(
        None,
        min_length=1,
        description="dotted name of the task head; default: the last Linear or Conv layer "
        "run whose output size is the model's",
    )


def lora_problem(algorithm: str, lora: LoraConfig | None) -> str | None:
    """Why ``algorithm`` cannot fine-tune through ``lora``, or ``None`` when it can."""
    if lora is not None and algorithm == "fedbn":
        return (
            "algorithm 'fedbn' keeps each site's normalisation layers local, but with "
            "model.lora they are frozen with the backbone and never travel; use fedavg"
        )
    return None
