"""``medsilo bench engine --hospital-model``: the engine's cost on a real hospital model.

(c) Overhead on a ResNet-18. FedAvg over four PneumoniaMNIST sites with a ResNet-18, against
a plain PyTorch loop that does the same training with nothing of medsilo's: for every round
and site it loads the global weights, takes the same optimiser steps on the same batches
(the same seeded batch order), and averages the weights; then it runs the engine's own final
evaluation (:func:`plain_federated_loop` says why). Runs alternate (engine, plain, engine,
plain, ...) and the medians are compared.
Goal: engine / plain <= 1.05, and the two final models equal bit for bit.

(d) Memory. Peak resident memory of a federation of 2, 5 and 10 sites, each run in a fresh
process: the in-process engine trains its sites one after another on one shared model, so
the peak should grow by about one model per *concurrently* training site (here one), not by
one model per site. The table shows the growth from 2 to 10 sites in model sizes.

A benchmark to read, not a test: nothing here asserts a timing.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from medsilo.config import RunConfig, parse_config
from medsilo.models.weights import get_weights, set_weights
from medsilo.runtime.clinical import ClinicalMetrics
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.records import evaluation_fields
from medsilo.runtime.rounds import site_seed
from medsilo.runtime.simulation import run_federation
from medsilo.training.samples import BatchSampler
from medsilo.training.task import task_loss
from medsilo.types import Weights, weighted_mean

OVERHEAD_GOAL = 1.05
MEMORY_SITES = (2, 5, 10)


def hospital_config(
    model: str = "resnet18",
    sites: int = 4,
    rounds: int = 2,
    steps: int = 5,
    batch_size: int = 32,
    rows_per_site: int = 256,
) -> RunConfig:
    """FedAvg of ``model`` over ``sites`` PneumoniaMNIST sites (Dirichlet non-IID), final
    evaluation only, clinical metrics cut to accuracy without bootstrap (the engine still
    scores each site's test and validation rows once more for them; the plain loop does
    not, so that pass counts against the engine)."""
    return parse_config(
        {
            "name": f"bench-{model}",
            "seed": 0,
            "data": {
                "dataset": "pneumoniamnist",
                "partition": "dirichlet",
                "alpha": 1.0,
                "num_sites": sites,
                "max_train_samples": rows_per_site * sites,
                "max_test_samples": 128,
            },
            "model": {"name": model},
            "algorithm": {"name": "fedavg"},
            "training": {
                "rounds": rounds,
                "local_steps": steps,
                "batch_size": batch_size,
                "lr": 0.01,
                "momentum": 0.9,
                "device": "cpu",
            },
            "evaluation": {"every": rounds, "metrics": ["accuracy"], "bootstrap_replicates": 0},
        }
    )


def plain_federated_loop(cfg: RunConfig, prep: PreparedFederation) -> Weights:
    """FedAvg written as a user would in plain PyTorch, then the same final evaluation as the
    engine's (loss and accuracy per site and pooled, and the clinical report: its
    operating-point pass over training rows is work a user's loop would do to report
    sensitivity and specificity too). What is left between the two is the federation's own
    machinery: weights to and from arrays, the update records, aggregation, round records."""
    model, names = prep.model, prep.fed.site_names
    global_weights = [w.copy() for w in prep.initial_weights]
    t = cfg.training
    for rnd in range(1, t.rounds + 1):
        deltas: list[Weights] = []
        sizes: list[float] = []
        for index, name in enumerate(names):
            set_weights(model, global_weights)
            data = prep.train[name]
            generator = torch.Generator().manual_seed(site_seed(cfg.seed, rnd, index))
            optimizer = torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum)
            sampler = BatchSampler(len(data), t.batch_size, generator)
            model.train()
            for x, y in data.training_batches(sampler, t.local_steps or 1):
                optimizer.zero_grad(set_to_none=True)
                task_loss(model(x), y, data.task).backward()  # type: ignore[no-untyped-call]
                optimizer.step()
            deltas.append([w - g for w, g in zip(get_weights(model), global_weights, strict=True)])
            sizes.append(float(len(data)))
        # w <- w + sum_k (n_k / n) (w_k - w), FedAvg's update as McMahan et al. write it
        mean_delta = weighted_mean(deltas, sizes)
        global_weights = [g + d for g, d in zip(global_weights, mean_delta, strict=True)]
    evaluation_fields(
        model, global_weights, dict.fromkeys(names, global_weights), prep.pooled_test, prep.test
    )
    clinical = ClinicalMetrics.of(cfg, prep.fed.task)
    if clinical is not None:
        reports = {n: clinical.report_for(prep, n, global_weights, last=True) for n in names}
        clinical.fields(reports)
    return global_weights


@dataclass(frozen=True)
class Overhead:
    engine_s: float
    plain_s: float
    max_weight_difference: float

    @property
    def ratio(self) -> float:
        return self.engine_s / self.plain_s


def measure_overhead(cfg: RunConfig, repeats: int) -> Overhead:
    engine_times, plain_times = [], []
    engine_weights: Weights = []
    plain_weights: Weights = []
    for _ in range(repeats):
        prep = PreparedFederation.build(cfg)
        t0 = time.perf_counter()
        engine_weights = run_federation(cfg, prepared=prep).weights
        engine_times.append(time.perf_counter() - t0)
        prep = PreparedFederation.build(cfg)
        t0 = time.perf_counter()
        plain_weights = plain_federated_loop(cfg, prep)
        plain_times.append(time.perf_counter() - t0)
    # Relative to each tensor's scale: BatchNorm running variances reach the hundreds, where
    # float32 rounding alone differs in the second decimal place.
    difference = max(
        float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1.0))
        for a, b in zip(engine_weights, plain_weights, strict=True)
    )
    return Overhead(statistics.median(engine_times), statistics.median(plain_times), difference)


_MEMORY_CHILD = """
import json, resource, sys
from medsilo.bench.hospital_model import hospital_config
from medsilo.runtime.simulation import run_federation
cfg = hospital_config(model=sys.argv[1], sites=int(sys.argv[2]), rounds=1, steps=2,
                      rows_per_site=64)
run_federation(cfg)
print(json.dumps({"peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def peak_memory_mib(model: str, sites: int) -> float:
    """Peak resident memory (MiB) of a fresh process running a ``sites``-site federation."""
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, model, str(sites)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_kib"]) / 1024


def run_hospital_model_benchmark(
    console: Console,
    model: str = "resnet18",
    repeats: int = 3,
    memory_sites: tuple[int, ...] = MEMORY_SITES,
) -> dict[str, float]:
    """Print (c) and (d) for ``model`` and return their numbers."""
    cfg = hospital_config(model)
    prep = PreparedFederation.build(cfg)
    model_mib = sum(w.nbytes for w in prep.initial_weights) / 2**20
    console.print(
        f"\n[bold](c) engine vs a plain PyTorch loop[/]: {model} ({model_mib:.1f} MiB of "
        f"weights), {len(prep.fed.sites)} sites, {cfg.training.rounds} rounds x "
        f"{cfg.training.local_steps} steps of {cfg.training.batch_size}, {repeats} repeats"
    )
    overhead = measure_overhead(cfg, repeats)
    table = Table("engine s", "plain loop s", "ratio", "goal", "max weight diff (relative)")
    table.add_row(
        f"{overhead.engine_s:.2f}",
        f"{overhead.plain_s:.2f}",
        f"{overhead.ratio:.3f}",
        f"<= {OVERHEAD_GOAL}",
        f"{overhead.max_weight_difference:.2e}",
    )
    console.print(table)
    console.print(f"[bold](d) peak resident memory[/] of a {model} federation, fresh processes")
    peaks = {n: peak_memory_mib(model, n) for n in memory_sites}
    few, many = memory_sites[0], memory_sites[-1]
    growth = (peaks[many] - peaks[few]) / model_mib
    memory = Table("sites", "peak MiB")
    for n, peak in peaks.items():
        memory.add_row(str(n), f"{peak:.0f}")
    console.print(memory)
    console.print(
        f"{few} -> {many} sites adds {growth:.2f} model sizes "
        f"(one model per site would add {many - few})"
    )
    return {
        "hospital_engine_s": overhead.engine_s,
        "hospital_plain_s": overhead.plain_s,
        "hospital_ratio": overhead.ratio,
        "hospital_max_weight_difference": overhead.max_weight_difference,
        "model_mib": model_mib,
        "memory_growth_in_models": growth,
        **{f"peak_mib_{n}_sites": p for n, p in peaks.items()},
    }
