"""``medsilo bench ray``: Flower's simulation runtime on a Ray cluster, one worker node vs two.

Workload: the four UCI heart-disease hospitals, federated standardisation, an MLP (two
hidden layers of 128), FedAvg, ``local_steps`` SGD steps of batch 32 per site per round,
evaluation every round. Without ``--address`` it builds two clusters on this machine
(:mod:`.ray_local_cluster`) one after the other, each a head that hosts no site (0 CPUs:
the driver's side) plus 1, then 2 worker nodes of one CPU each, so one, then two site actors
train at a time; with ``--address`` it runs once on that cluster as it is. Each run goes
through :func:`~medsilo.runtime.flower.run_flower_simulation` with ``ray_address=``, and
the sites' algorithm is FedAvg that also notes which Ray node ran each local update
(:class:`NodeRecordingFedAvg`), so the table says how many nodes did the work. Reported:
rounds per second and site-steps (optimiser steps of all sites) per second over the
federated loop (Flower's ``rounds_s``: from every site's first answer to the last round's
end; start-up and shutdown are shown apart), the 1-minute load average before and after
each run, and the largest difference to the in-process engine's final weights. Nothing is
asserted; the numbers are printed.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from medsilo.algorithms.base import SiteTask
from medsilo.algorithms.fedavg import FedAvg
from medsilo.bench.ray_local_cluster import local_ray_cluster
from medsilo.config import RunConfig, parse_config
from medsilo.data.base import FederatedData
from medsilo.data.registry import build_federation
from medsilo.types import Update, Weights


class NodeRecordingFedAvg(FedAvg):
    """FedAvg whose local update also leaves a marker naming the Ray node it ran on.

    Markers are empty files ``SITE.ROUND.NODE_ID`` in ``folder``, which every node must be
    able to write (one machine, or a shared filesystem); training is FedAvg's, unchanged.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def local_update(
        self, task: SiteTask, global_weights: Weights, payload: dict[str, Weights]
    ) -> Update:
        import ray

        node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
        (self.folder / f"{task.site}.{task.round}.{node}").touch()
        return super().local_update(task, global_weights, payload)


def nodes_used(folder: Path) -> dict[str, set[str]]:
    """Ray node id -> the sites whose local updates ran there (from the markers)."""
    out: dict[str, set[str]] = {}
    for marker in folder.iterdir():
        site, _, node = marker.name.split(".", 2)
        out.setdefault(node, set()).add(site)
    return out


def bench_config(rounds: int, local_steps: int) -> RunConfig:
    return parse_config(
        {
            "name": "bench-ray",
            "seed": 0,
            "data": {
                "dataset": "heart_disease",
                "partition": "natural",
                "standardize": "federated",
            },
            "model": {"name": "mlp"},
            "algorithm": {"name": "fedavg"},
            "training": {
                "rounds": rounds,
                "local_steps": local_steps,
                "batch_size": 32,
                "lr": 0.01,
                "optimizer": "sgd",
            },
            "evaluation": {"every": 1, "loho": False, "bootstrap_replicates": 20},
        }
    )


@dataclass
class RayRun:
    label: str
    workers: str
    site_slots: str
    nodes: int
    startup_s: float
    rounds_s: float
    shutdown_s: float
    load_before: float
    load_after: float
    max_diff: float

    def rates(self, rounds: int, site_steps: int) -> tuple[float, float]:
        return rounds / self.rounds_s, site_steps / self.rounds_s


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def run_on_cluster(
    label: str,
    workers: str,
    address: str,
    cfg: RunConfig,
    fed: FederatedData,
    reference: list[np.ndarray],
) -> RayRun:
    """One federation on the cluster at ``address``."""
    from medsilo.runtime.flower import run_flower_simulation
    from medsilo.runtime.flower.ray_cluster import SiteResources, connect

    with tempfile.TemporaryDirectory(prefix="medsilo-ray-markers-") as markers:
        folder = Path(markers)
        load_before = _load()
        result = run_flower_simulation(
            cfg, fed, ray_address=address, algorithm=NodeRecordingFedAvg(folder)
        )
        load_after = _load()
        used = nodes_used(folder)
    import ray

    slots = connect(address, SiteResources())  # the same count Flower's pool was built from
    ray.shutdown()
    diff = max(
        float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
        for a, b in zip(result.weights, reference, strict=True)
    )
    return RayRun(
        label,
        workers,
        str(slots),
        len(used),
        result.startup_s,
        result.rounds_s,
        result.shutdown_s,
        load_before,
        load_after,
        diff,
    )


def run_ray_benchmark(
    console: Console,
    rounds: int = 5,
    local_steps: int = 100,
    address: str | None = None,
    worker_counts: tuple[int, ...] = (1, 2),
) -> list[RayRun]:
    """Run the benchmark (module docstring) and print its table."""
    from medsilo.runtime.simulation import run_federation

    cfg = bench_config(rounds, local_steps)
    fed = build_federation(cfg.data, cfg.seed)
    t0 = time.perf_counter()
    engine = run_federation(cfg, fed)
    engine_s = time.perf_counter() - t0
    runs: list[RayRun] = []
    if address is not None:
        runs.append(run_on_cluster("your cluster", "as it is", address, cfg, fed, engine.weights))
    else:
        for n in worker_counts:
            with local_ray_cluster(head_cpus=0, worker_cpus=[1] * n) as cluster:
                label = f"{n} worker node{'s' if n > 1 else ''}"
                runs.append(
                    run_on_cluster(label, f"{n} x 1 CPU", cluster.address, cfg, fed, engine.weights)
                )
    site_steps = rounds * len(fed.sites) * local_steps
    _print(console, runs, rounds, site_steps, engine_s, len(fed.sites), local_steps)
    return runs


def _print(
    console: Console,
    runs: list[RayRun],
    rounds: int,
    site_steps: int,
    engine_s: float,
    sites: int,
    local_steps: int,
) -> None:
    table = Table(
        title=f"Flower simulation on a Ray cluster: {sites} heart-disease sites x {rounds} "
        f"rounds x {local_steps} steps (MLP, batch 32), FedAvg"
    )
    for col in (
        "cluster",
        "workers",
        "site slots",
        "nodes used",
        "start-up s",
        "rounds s",
        "shutdown s",
        "rounds/s",
        "site-steps/s",
        "load 1-min before/after",
        "max |w - engine|",
    ):
        table.add_column(col, justify="left" if col in ("cluster", "workers") else "right")
    base: float | None = None
    for run in runs:
        per_round, per_step = run.rates(rounds, site_steps)
        base = base or per_step
        table.add_row(
            run.label,
            run.workers,
            run.site_slots,
            str(run.nodes),
            f"{run.startup_s:.2f}",
            f"{run.rounds_s:.2f}",
            f"{run.shutdown_s:.2f}",
            f"{per_round:.3f}",
            f"{per_step:.0f} ({per_step / base:.2f}x)",
            f"{run.load_before:.2f} / {run.load_after:.2f}",
            f"{run.max_diff:.2g}",
        )
    console.print(table)
    console.print(
        f"in-process engine (the weights' reference), first in this process, imports and "
        f"data preparation included: {engine_s:.2f} s end to end; CPU cores on this machine: "
        f"{os.cpu_count()}, shared with whatever else runs (see the load averages)"
    )
