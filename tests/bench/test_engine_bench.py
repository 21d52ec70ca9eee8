"""The engine benchmark runs end to end with tiny settings (no timing thresholds here)."""

from __future__ import annotations

import io
import math

import torch
from rich.console import Console

from medsilo.bench.engine import run_engine_benchmark
from medsilo.bench.hospital_model import run_hospital_model_benchmark


def test_engine_benchmark_runs_and_reports_positive_finite_numbers() -> None:
    threads_before = torch.get_num_threads()
    buffer = io.StringIO()
    console = Console(file=buffer, width=120)

    results = run_engine_benchmark(
        steps=2, rounds=1, with_flower=False, console=console, repeats=2, hospital_model=None
    )

    assert {
        "federated_wall_s",
        "centralised_wall_s",
        "overhead_ratio",
        "federated_us_per_step",
        "centralised_us_per_step",
        "optimiser_steps",
    } <= set(results)
    assert not any(k.startswith("flower") for k in results)
    for key, value in results.items():
        assert isinstance(value, float), key
        assert math.isfinite(value) and value > 0, (key, value)
    assert results["optimiser_steps"] == 1 * 4 * 2  # rounds x hospitals x steps
    text = buffer.getvalue()
    assert "engine overhead" in text and "overhead ratio" in text
    assert torch.get_num_threads() == threads_before  # the benchmark restores it


def test_defaults_match_the_cli() -> None:
    import inspect

    params = inspect.signature(run_engine_benchmark).parameters
    assert params["steps"].default == 100 and params["rounds"].default == 15
    assert params["with_flower"].default is True
    assert params["hospital_model"].default == "resnet18"


def test_hospital_model_benchmark_matches_a_plain_pytorch_loop() -> None:
    buffer = io.StringIO()
    results = run_hospital_model_benchmark(
        Console(file=buffer, width=120), model="cnn", repeats=1, memory_sites=(2, 3)
    )
    # The engine's FedAvg is the plain loop's computation: the same final model.
    assert results["hospital_max_weight_difference"] == 0.0  # bit for bit
    for key in ("hospital_engine_s", "hospital_plain_s", "peak_mib_2_sites", "peak_mib_3_sites"):
        assert math.isfinite(results[key]) and results[key] > 0, key
    assert "plain PyTorch loop" in buffer.getvalue() and "model sizes" in buffer.getvalue()
