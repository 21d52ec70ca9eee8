"""``medsilo bench lora``: LoRA adapters against full fine-tuning of the same backbone.

Both runs start from one backbone: the model a config names (``model.name`` and, where
the build has them, its local weights), optionally pretrained here first on the pooled
Fashion-MNIST training images (bundled) so that the adapters refine features instead of
random ones. Then the same federation fine-tunes it twice with FedAvg: every tensor (full)
or only the adapters and the task head (LoRA). The table gives what one round sends
(tensors, parameters, uplink and downlink bytes, from the round records) and the test
accuracy after each run.

This is a measurement to read, not a test: nothing here asserts a figure.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from medsilo.config import RunConfig, parse_config
from medsilo.data.base import concat_splits, in_memory
from medsilo.data.registry import build_federation
from medsilo.data.spec import DataConfig
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.simulation import run_federation
from medsilo.training.local import LocalTraining, train_local
from medsilo.training.tensors import TensorData

PRETRAIN_DATASET = "fashion_mnist"


@dataclass(frozen=True)
class FineTuning:
    """One fine-tuning run as the table shows it."""

    mode: str
    tensors: int
    parameters: int
    bytes_up: int  # per round, all sites together
    bytes_down: int
    accuracy: list[float]  # pooled test accuracy after each round
    wall_s: float


@dataclass(frozen=True)
class LoraBench:
    """The workload: which backbone, data and budget."""

    model: dict[str, Any]
    lora: dict[str, Any]
    dataset: str = "mnist"
    sites: int = 4
    rounds: int = 5
    local_steps: int = 20
    batch_size: int = 32
    lr_full: float = 0.05
    lr_lora: float = 0.1
    max_train_samples: int = 4000
    max_test_samples: int = 1000
    pretrain_steps: int = 300
    seed: int = 0

    def config(self, lora: bool) -> RunConfig:
        model = self.model | ({"lora": self.lora} if lora else {})
        return parse_config(
            {
                "name": "bench-lora" if lora else "bench-full",
                "seed": self.seed,
                "data": {
                    "dataset": self.dataset,
                    "partition": "dirichlet",
                    "alpha": 1.0,
                    "num_sites": self.sites,
                    "max_train_samples": self.max_train_samples,
                    "max_test_samples": self.max_test_samples,
                },
                "model": model,
                "training": {
                    "rounds": self.rounds,
                    "local_steps": self.local_steps,
                    "batch_size": self.batch_size,
                    "lr": self.lr_lora if lora else self.lr_full,
                },
                "evaluation": {"bootstrap_replicates": 0},
            },
            "bench lora",
        )


def pretrain(
    model: nn.Module,
    steps: int,
    seed: int,
    batch_size: int = 32,
    lr: float = 0.05,
    max_samples: int = 4000,
) -> dict[str, torch.Tensor]:
    """Train ``model`` (a plain backbone for 1x28x28 images) centrally on up to
    ``max_samples`` bundled Fashion-MNIST training images for ``steps`` SGD steps; its state."""
    data = DataConfig(
        dataset=PRETRAIN_DATASET,
        partition="iid",
        num_sites=1,
        max_train_samples=max_samples,
        max_test_samples=1,
    )
    fed = build_federation(data, seed)
    arrays = in_memory(concat_splits([s.train for s in fed.sites]), "pretraining")
    pooled = TensorData.of(arrays, fed.task)
    local = LocalTraining(batch_size=batch_size, lr=lr, local_steps=1)
    train_local(model, pooled, local, torch.Generator().manual_seed(seed), steps=steps)
    return {n: t.clone() for n, t in model.state_dict().items()}


def fine_tune(bench: LoraBench, lora: bool, backbone: Path | None) -> FineTuning:
    """FedAvg of the backbone, in full or through adapters; the backbone file is read as a
    user's would be (``model.weights``, a head that does not fit is left fresh)."""
    cfg = bench.config(lora)
    if backbone is not None:
        model = cfg.model.model_copy(update={"weights": str(backbone), "weights_strict": False})
        cfg = cfg.model_copy(update={"model": model})
    prep = PreparedFederation.build(cfg)
    start = time.perf_counter()
    result = run_federation(cfg, prepared=prep)
    wall = time.perf_counter() - start
    first = result.rounds[0]
    return FineTuning(
        mode=f"LoRA r={cfg.model.lora.r}" if cfg.model.lora is not None else "full",
        tensors=len(prep.initial_weights),
        parameters=sum(w.size for w in prep.initial_weights),
        bytes_up=first.bytes_up,
        bytes_down=first.bytes_down,
        accuracy=[float(r.test.accuracy or 0.0) if r.test else 0.0 for r in result.rounds],
        wall_s=wall,
    )


def run_lora_benchmark(bench: LoraBench, console: Console) -> list[FineTuning]:
    """Run both fine-tunings of ``bench`` and print the comparison."""
    with tempfile.TemporaryDirectory() as folder:
        backbone = None
        if bench.pretrain_steps > 0:
            plain = PreparedFederation.build(bench.config(lora=False))
            state = pretrain(
                plain.model,
                bench.pretrain_steps,
                bench.seed,
                bench.batch_size,
                bench.lr_full,
                bench.max_train_samples,
            )
            backbone = Path(folder) / "backbone.pt"
            torch.save(state, backbone)
        rows = [fine_tune(bench, lora, backbone) for lora in (False, True)]
    full = rows[0]
    table = Table(
        title=f"{bench.model} on {bench.dataset}, {bench.sites} sites, {bench.rounds} rounds x "
        f"{bench.local_steps} steps, backbone pretrained {bench.pretrain_steps} steps on "
        f"{PRETRAIN_DATASET}"
    )
    for column in (
        "fine-tuning",
        "tensors",
        "parameters",
        "bytes up / round",
        "vs full",
        "bytes down / round",
        "accuracy by round",
        "wall s",
    ):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.mode,
            str(row.tensors),
            f"{row.parameters:,}",
            f"{row.bytes_up:,}",
            f"{full.bytes_up / row.bytes_up:.1f}x fewer",
            f"{row.bytes_down:,}",
            " ".join(f"{a:.3f}" for a in row.accuracy),
            f"{row.wall_s:.1f}",
        )
    console.print(table)
    return rows
