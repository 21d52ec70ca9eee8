"""``medsilo bench paper --quick / --standard / --full``: the second pass of docs/ccpgd.md §10.

Two phases. First every job that does not depend on CC-PGD's operating point (pooled
training, FedAvg per codec, DP-FL per epsilon, FedProx per mu, the (lam, mu) grid), the
tuning seed's grid included; then the operating point is chosen by §10's rule
(:func:`medsilo.bench.paper_rules.choose_operating_point`) and run, with the rho and kappa
ablations, where the grid did not run. Jobs are independent runs, spread over ``workers``
processes with one intra-op thread each. Every run is measured while it trains: the round
records give bytes and simulated seconds per round and every round's test accuracy, and
:func:`medsilo.bench.paper_leakage.run_with_leakage` attacks what the sites transmitted
(no second training). The report is :mod:`medsilo.bench.paper_report`.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from medsilo.bench.paper import Setting
from medsilo.bench.paper_plan import (
    SecondPlan,
    baseline_jobs,
    grid_jobs,
    job_config,
    operating_jobs,
)
from medsilo.bench.paper_rules import (
    TARGET_SHARE,
    Candidate,
    choose_operating_point,
    primary_reduction,
    to_target,
)
from medsilo.progress import progress_bars

#: Round-record fields kept per run (bytes-to-target needs all of them for every round).
KEPT = ("round", "bytes_up", "bytes_down", "sim_time_s")


@dataclass
class Outcome:
    setting: str
    seed: int
    family: str
    label: str
    codec: str
    algorithm: dict[str, Any]
    accuracy: float
    rounds: list[dict[str, Any]]
    projected_share: float | None
    noise_multiplier: float | None
    epsilon: float | None
    leakage: dict[str, Any] | None
    wall_s: float
    cpu_s: float


_PREPARED: dict[tuple[Setting, int, str], Any] = {}


def _prepared(p: SecondPlan, s: Setting, seed: int) -> Any:
    """One prepared federation per worker (the last one used), keyed by setting and seed."""
    from medsilo.bench.paper_plan import Job
    from medsilo.runtime.prepared import PreparedFederation

    key = (s, seed, p.mode)
    if key not in _PREPARED:
        _PREPARED.clear()
        probe = job_config(p, Job(s, seed, "probe", "probe", "none", (("name", "fedavg"),)), [])
        _PREPARED[key] = PreparedFederation.build(probe)
    return _PREPARED[key]


def _worker_init() -> None:
    import torch

    # small models on a shared CPU run many times slower with more intra-op threads
    torch.set_num_threads(1)


def run_job(p: SecondPlan, job: Any) -> Outcome:
    """Run one job and measure it (in a worker process)."""
    from medsilo.bench.paper_leakage import run_with_leakage
    from medsilo.privacy.accounting import client_dp_noise
    from medsilo.runtime.simulation import run_federation

    wall0, cpu0 = time.perf_counter(), time.process_time()
    prep = _prepared(p, job.setting, job.seed)
    cfg = job_config(p, job, prep.fed.site_names)
    leakage: dict[str, Any] | None = None
    if p.leakage is not None:
        res, measures = run_with_leakage(cfg, p.leakage, prepared=prep)
        leakage = measures.as_dict()
    else:
        res = run_federation(cfg, prepared=prep)
    rounds = [
        {**{k: r[k] for k in KEPT}, "test": {"accuracy": float(r["test"]["accuracy"])}}
        for r in res.rounds
        if "test" in r
    ]
    shares = [r["extra"]["projected_share"] for r in res.rounds if "projected_share" in r["extra"]]
    privacy = res.rounds[-1].get("privacy") or {}
    return Outcome(
        setting=job.setting.label,
        seed=job.seed,
        family=job.family,
        label=job.label,
        codec=job.codec,
        algorithm=job.algorithm_dict,
        accuracy=rounds[-1]["test"]["accuracy"] if rounds else math.nan,
        rounds=rounds,
        projected_share=sum(shares) / len(shares) if shares else None,
        noise_multiplier=(
            client_dp_noise(cfg, len(prep.fed.site_names)) if job.epsilon is not None else None
        ),
        epsilon=privacy.get("epsilon") if isinstance(privacy, dict) else None,
        leakage=leakage,
        wall_s=time.perf_counter() - wall0,
        cpu_s=time.process_time() - cpu0,
    )


def leakage_value(o: Outcome, key: str) -> float:
    """One of the run's leakage measures (``LeakageMeasures.as_dict``, where an unmeasured
    value is ``None``: a pooled run has no inversion); NaN when absent or not measured."""
    if o.leakage is None:
        return math.nan
    value = o.leakage.get(key)
    return float(value) if isinstance(value, int | float) else math.nan


def primary_leakage(o: Outcome) -> float:
    """Site-weighted inversion success share (§10's primary measure); NaN: not measured."""
    return leakage_value(o, "inversion_success")


def membership_advantage(o: Outcome) -> float:
    """Site-weighted membership advantage ``AUC - 0.5`` (§10); NaN: not measured."""
    return leakage_value(o, "membership_advantage")


def pooled_target(outcomes: Iterable[Outcome], setting: str, seed: int) -> float:
    """95 % of the pooled model's final test accuracy in the same setting and seed."""
    for o in outcomes:
        if o.setting == setting and o.seed == seed and o.family == "pooled":
            return TARGET_SHARE * o.accuracy
    return math.nan


def operating_points(
    p: SecondPlan, outcomes: list[Outcome]
) -> tuple[dict[str, tuple[float, float]], dict[str, Any]]:
    """§10's operating point per grid codec on the tuning seed, and how it was chosen. The
    "primary leakage reduction" it maximises is :func:`primary_reduction`'s: the membership
    advantage's where FedAvg's inversion success is 0 (docs/ccpgd.md §10, Amendment 1)."""
    seed = p.tuning_seed if p.tuning_seed is not None else p.seeds[0]
    label = p.tuning_setting.label
    mine = [o for o in outcomes if o.setting == label and o.seed == seed]
    target = pooled_target(mine, label, seed)
    pooled_acc = target / TARGET_SHARE
    points: dict[str, tuple[float, float]] = {}
    notes: dict[str, Any] = {"setting": label, "seed": seed, "target_accuracy": target}
    for codec in p.grid_codecs:
        fedavg = next(o for o in mine if o.family == "fedavg" and o.codec == codec)
        fed_bytes = to_target(fedavg.rounds, target).bytes
        cands = []
        for o in mine:
            if o.family != "ccpgd" or o.codec != codec:
                continue
            cands.append(
                Candidate(
                    label=o.label,
                    leakage_reduction=primary_reduction(
                        primary_leakage(o),
                        primary_leakage(fedavg),
                        membership_advantage(o),
                        membership_advantage(fedavg),
                    ),
                    bytes_to_target=to_target(o.rounds, target).bytes,
                    fedavg_bytes_to_target=fed_bytes,
                    gap_to_pooled_pts=100.0 * (pooled_acc - o.accuracy),
                )
            )
        chosen = choose_operating_point(cands)
        by_label = {o.label: o for o in mine if o.family == "ccpgd" and o.codec == codec}
        if chosen is None:
            # Not in §10: no grid point met the rule. The grid centre is run instead, and the
            # report says so.
            lam, mu = p.grid[len(p.grid) // 2]
            notes[codec] = {"chosen": None, "fallback": f"lam={lam:g} mu={mu:g}"}
        else:
            algo = by_label[chosen.label].algorithm
            lam, mu = float(algo["lam"]), float(algo["mu"])
            notes[codec] = {"chosen": chosen.label, "candidates": [asdict(c) for c in cands]}
        points[codec] = (lam, mu)
    return points, notes


@dataclass
class SecondResult:
    plan: SecondPlan
    outcomes: list[Outcome]
    points: dict[str, tuple[float, float]]
    point_notes: dict[str, Any]
    wall_s: float
    cpu_s: float


def _run_jobs(
    p: SecondPlan,
    jobs: list[Any],
    report: Callable[[Outcome], None],
    pool: ProcessPoolExecutor | None,
) -> list[Outcome]:
    results = []
    if pool is None:
        for j in jobs:
            results.append(run_job(p, j))
            report(results[-1])
        return results
    futures = [pool.submit(run_job, p, j) for j in jobs]
    for f in futures:
        results.append(f.result())
        report(results[-1])
    return results


def first_phase_jobs(p: SecondPlan) -> list[Any]:
    jobs = []
    if p.tuning_seed is not None:
        jobs += baseline_jobs(p, p.tuning_setting, p.tuning_seed)
        jobs += grid_jobs(p, p.tuning_setting, p.tuning_seed)
    for s in p.settings:
        for seed in p.seeds:
            jobs += baseline_jobs(p, s, seed)
            if s in p.grid_settings:
                jobs += grid_jobs(p, s, seed)
    # the tuning setting's jobs first, so its operating point is known as early as possible
    return jobs


def run_second_pass(p: SecondPlan, progress: bool = True, log: Path | None = None) -> SecondResult:
    """Run the plan; ``log``: a JSON-lines file that gets each run's outcome as it finishes
    (a long run's partial results survive an interruption)."""
    wall0 = time.perf_counter()
    cpu0 = time.process_time()
    first = first_phase_jobs(p)
    pool = (
        ProcessPoolExecutor(
            max_workers=p.workers, mp_context=get_context("spawn"), initializer=_worker_init
        )
        if p.workers > 1
        else None
    )
    if pool is None:
        _worker_init()
    try:
        with progress_bars(progress) as bars:
            task = bars.add_task("bench paper (second pass)", total=len(first), status="")

            def report(o: Outcome) -> None:
                status = f"{o.setting} {o.label} [{o.codec}] seed {o.seed}: acc {o.accuracy:.3f}"
                bars.update(task, advance=1, status=status)
                if log is not None:
                    with log.open("a") as f:
                        f.write(json.dumps(asdict(o), default=str) + "\n")

            outcomes = _run_jobs(p, first, report, pool)
            points, notes = operating_points(p, outcomes)
            second = [
                job
                for s in p.settings
                for seed in p.seeds
                for job in operating_jobs(p, s, seed, points)
            ]
            bars.update(task, total=len(first) + len(second))
            outcomes += _run_jobs(p, second, report, pool)
    finally:
        if pool is not None:
            pool.shutdown()
    children = os.times()
    cpu = time.process_time() - cpu0 + children.children_user + children.children_system
    return SecondResult(p, outcomes, points, notes, time.perf_counter() - wall0, cpu)
