"""``medsilo bench engine``: what the in-process engine costs, measured side by side.

(a) Engine overhead. FedAvg on the four Fed-Heart-Disease hospitals (``heart_fedavg``,
evaluation only at the end, no leave-one-hospital-out) against centralised training on the
pooled data (the ``pooled`` baseline) with the same number of optimiser steps and the same
batch size. Runs alternate (federated, pooled, federated, pooled, ...) so that drifting
machine load hits both alike; the medians are compared. Goal: ratio <= 1.15.

(b) This engine against Flower's simulation runtime on the same workload (three hospitals,
three rounds), end to end as a user pays for it (Flower's time includes starting Ray and its
workers), with the largest difference between the two final models. Goals: >= 5x faster,
weights equal within float tolerance.

(c) and (d), the same engine on a hospital-sized model (a ResNet-18 by default) against a
plain PyTorch loop, and its peak memory as sites are added: :mod:`medsilo.bench.hospital_model`.

This is a benchmark to read, not a test: nothing here asserts a timing.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from medsilo.bench.hospital_model import run_hospital_model_benchmark
from medsilo.bundled import resolve_config
from medsilo.config import RunConfig
from medsilo.data.base import FederatedData
from medsilo.data.registry import build_federation
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.simulation import run_federation
from medsilo.training.threads import intra_op_threads

OVERHEAD_GOAL = 1.15
SPEEDUP_GOAL = 5.0
WEIGHT_TOLERANCE = 1e-5
FLOWER_SITES = 3
FLOWER_ROUNDS = 3


@dataclass(frozen=True)
class _Workload:
    federated: RunConfig
    pooled: RunConfig
    fed: FederatedData
    steps_total: int


def _configs(steps: int, rounds: int) -> _Workload:
    base = resolve_config("heart_fedavg")
    fed = build_federation(base.data, base.seed)
    sites = len(fed.sites)
    training = base.training.model_dump() | {
        "rounds": rounds,
        "local_steps": steps,
        "local_epochs": None,
    }
    federated = base.with_overrides(
        name="bench-fedavg",
        training=training,
        evaluation={"every": rounds, "loho": False},
    )
    # Same optimiser steps (rounds x sites x steps) and batch size, one model, pooled data.
    pooled = federated.with_overrides(
        name="bench-pooled",
        algorithm={"name": "pooled"},
        training=training | {"local_steps": steps * sites},
    )
    return _Workload(federated, pooled, fed, rounds * sites * steps)


def _timed(fn: Callable[[], object]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _engine_overhead(work: _Workload, repeats: int, console: Console) -> dict[str, float]:
    prep = PreparedFederation.build(work.federated, work.fed)
    # Warm-up: first-call costs (allocator, kernels) belong to neither side.
    warm = {"rounds": 1, "local_steps": 5}
    run_federation(
        work.federated.with_overrides(training=work.federated.training.model_dump() | warm),
        prepared=prep,
    )
    run_federation(
        work.pooled.with_overrides(training=work.pooled.training.model_dump() | warm),
        prepared=prep,
    )
    fed_times: list[float] = []
    pooled_times: list[float] = []
    for _ in range(repeats):
        fed_times.append(_timed(lambda: run_federation(work.federated, prepared=prep)))
        pooled_times.append(_timed(lambda: run_federation(work.pooled, prepared=prep)))
    fed_s = statistics.median(fed_times)
    pooled_s = statistics.median(pooled_times)
    ratio = fed_s / pooled_s
    sites = len(work.fed.sites)
    rounds = work.federated.training.rounds
    steps = work.federated.training.local_steps

    table = Table(
        title=(
            f"(a) engine overhead: FedAvg, {sites} hospitals x {rounds} rounds x {steps} "
            f"steps vs centralised, {work.steps_total} optimiser steps each, "
            f"batch {work.federated.training.batch_size}; median of {repeats}, interleaved"
        ),
        title_justify="left",
    )
    for col in ["run", "median wall (s)", "all runs (s)", "µs / step"]:
        table.add_column(col, justify="left" if col == "run" else "right")
    for label, times, med in [
        ("federated (in-process engine)", fed_times, fed_s),
        ("centralised (pooled baseline)", pooled_times, pooled_s),
    ]:
        table.add_row(
            label,
            f"{med:.3f}",
            " ".join(f"{t:.2f}" for t in times),
            f"{med / work.steps_total * 1e6:.1f}",
        )
    console.print(table)
    verdict = "[green]meets[/]" if ratio <= OVERHEAD_GOAL else "[red]misses[/]"
    console.print(
        f"overhead ratio federated / centralised = [bold]{ratio:.3f}[/] "
        f"({verdict} the goal <= {OVERHEAD_GOAL}); "
        f"engine cost per local step {(fed_s - pooled_s) / work.steps_total * 1e6:+.1f} µs"
    )
    return {
        "federated_wall_s": fed_s,
        "centralised_wall_s": pooled_s,
        "overhead_ratio": ratio,
        "federated_us_per_step": fed_s / work.steps_total * 1e6,
        "centralised_us_per_step": pooled_s / work.steps_total * 1e6,
        "optimiser_steps": float(work.steps_total),
    }


def _versus_flower(work: _Workload, repeats: int, console: Console) -> dict[str, float]:
    from medsilo.runtime.flower import run_flower_simulation

    fed = work.fed
    while len(fed.sites) > FLOWER_SITES:
        fed = fed.without(fed.sites[-1].name)
    training = work.federated.training.model_dump() | {"rounds": FLOWER_ROUNDS}
    cfg = work.federated.with_overrides(
        name="bench-flower",
        training=training,
        evaluation={"every": FLOWER_ROUNDS, "loho": False},
    )
    # End to end from (config, data) for both: preparing tensors and the model included.
    engine_times: list[float] = []
    engine_result = None
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        engine_result = run_federation(cfg, fed)
        engine_times.append(time.perf_counter() - t0)
    assert engine_result is not None
    engine_s = statistics.median(engine_times)

    gc.collect()
    flower = run_flower_simulation(cfg, fed)
    max_diff = max(
        float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
        for a, b in zip(engine_result.weights, flower.weights, strict=True)
    )
    speedup = flower.wall_s / engine_s
    speedup_after_start = flower.rounds_s / engine_s

    steps = cfg.training.local_steps
    table = Table(
        title=(
            f"(b) {FLOWER_SITES} hospitals ({', '.join(fed.site_names)}) x {FLOWER_ROUNDS} "
            f"rounds x {steps} steps, FedAvg: in-process engine vs Flower run_simulation (Ray)"
        ),
        title_justify="left",
    )
    for col in ["runtime", "wall (s)", "start-up (s)", "rounds (s)", "shutdown (s)"]:
        table.add_column(col, justify="left" if col == "runtime" else "right")
    table.add_row(f"medsilo engine (median of {repeats})", f"{engine_s:.3f}", "-", "-", "-")
    table.add_row(
        "Flower simulation (1 run)",
        f"{flower.wall_s:.2f}",
        f"{flower.startup_s:.2f}",
        f"{flower.rounds_s:.2f}",
        f"{flower.shutdown_s:.2f}",
    )
    console.print(table)
    verdict = "[green]meets[/]" if speedup >= SPEEDUP_GOAL else "[red]misses[/]"
    same = "[green]equal[/]" if max_diff <= WEIGHT_TOLERANCE else "[red]DIFFERENT[/]"
    console.print(
        f"speed-up engine vs Flower = [bold]{speedup:.1f}x[/] ({verdict} the goal >= "
        f"{SPEEDUP_GOAL:.0f}x); after Flower's start-up alone: {speedup_after_start:.1f}x"
    )
    console.print(
        f"final weights: max |engine - Flower| = [bold]{max_diff:.3g}[/] "
        f"({same} within {WEIGHT_TOLERANCE:g})"
    )
    return {
        "engine_wall_s": engine_s,
        "flower_wall_s": flower.wall_s,
        "flower_startup_s": flower.startup_s,
        "flower_rounds_s": flower.rounds_s,
        "flower_shutdown_s": flower.shutdown_s,
        "speedup": speedup,
        "speedup_after_startup": speedup_after_start,
        "max_abs_weight_diff": max_diff,
    }


def run_engine_benchmark(
    steps: int = 100,
    rounds: int = 15,
    with_flower: bool = True,
    console: Console | None = None,
    repeats: int = 5,
    threads: int | None = 1,
    hospital_model: str | None = "resnet18",
) -> dict[str, float]:
    """Print both comparisons and return their numbers (seconds, ratios, µs per step).

    ``threads`` pins torch's intra-op threads for the duration (restored afterwards; None
    keeps the current setting). One thread is the default because these models are tiny:
    with more, every step waits for all threads to be scheduled, which on a busy machine
    costs milliseconds per step and swamps what is being measured. Flower's workers run
    with one thread each (Ray sets ``OMP_NUM_THREADS`` from ``num_cpus: 1``), so one thread
    also keeps (b) like for like.
    """
    if steps < 1 or rounds < 1 or repeats < 1:
        raise ValueError("steps, rounds and repeats must all be >= 1")
    console = console or Console()
    with intra_op_threads(threads), warnings.catch_warnings():
        # The data layer hands out read-only (cached) arrays and TensorData.of wraps
        # them without a copy; torch warns once, harmlessly (inputs are never written).
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        console.print(
            f"[bold]medsilo bench engine[/]  torch {torch.__version__}, "
            f"{torch.get_num_threads()} intra-op thread(s), {os.cpu_count()} CPU(s)"
        )
        work = _configs(steps, rounds)
        results = _engine_overhead(work, repeats, console)
        if with_flower:
            results |= _versus_flower(work, repeats, console)
        if hospital_model is not None:
            results |= run_hospital_model_benchmark(
                console, hospital_model, repeats=min(repeats, 3)
            )
    return results
