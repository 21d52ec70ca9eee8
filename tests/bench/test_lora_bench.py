"""``medsilo bench lora`` on a tiny budget: both fine-tunings run from one backbone, and the
table counts what each sends."""

from __future__ import annotations

import io

from rich.console import Console

from medsilo.bench.lora import LoraBench, run_lora_benchmark
from medsilo.models.builder import build_model


def test_lora_sends_a_fraction_of_full_fine_tuning() -> None:
    bench = LoraBench(
        model={"name": "cnn"},
        lora={"r": 1, "alpha": 2},
        sites=2,
        rounds=2,
        local_steps=2,
        max_train_samples=200,
        max_test_samples=100,
        pretrain_steps=2,
    )
    text = io.StringIO()
    full, lora = run_lora_benchmark(bench, Console(file=text, width=250))
    assert (full.mode, lora.mode) == ("full", "LoRA r=1")
    assert full.parameters == sum(
        p.numel() for p in build_model("cnn", (1, 28, 28), 10).parameters()
    )
    assert lora.parameters * 20 < full.parameters
    # 2 sites, at most 4 bytes a parameter each (exact zeros cost less), plus headers
    assert 0 < lora.bytes_up < full.bytes_up / 20
    assert lora.bytes_up <= 2 * (4 * lora.parameters + 5 * lora.tensors)
    assert len(full.accuracy) == len(lora.accuracy) == 2
    assert "LoRA r=1" in text.getvalue() and "x fewer" in text.getvalue()
