"""``medsilo bench deployment``: seconds per round, deployed on loopback vs in-process.

Same workload everywhere: heart disease over three hospitals (cleveland, hungarian, va),
federated standardisation, logistic model, FedAvg, ``local_steps`` SGD steps per site per
round, evaluation every round. Runs, side by side in one invocation:

* the in-process engine (:func:`medsilo.runtime.simulation.run_federation`);
* the deployed runtime on 127.0.0.1 (:mod:`medsilo.deploy.loopback`: ``medsilo coordinator
  start`` with TLS and SuperNode authentication, three ``medsilo site start`` processes,
  medsilo's polling: 0.1 s at the coordinator, 0.2 s at the sites), three ways:
  *before*: two exchanges per round (``train``, then ``evaluate``:
  ``--separate-evaluation``) and a fresh ``flwr-clientapp`` process for every message
  (``--cold-clientapps``, Flower's subprocess isolation); then one exchange per round
  (train-with-evaluation), still cold; *after*: one exchange per round and warm ClientApp
  processes (forked from one that imported medsilo once, :mod:`medsilo.deploy.warm_superexec`);
* the start-up cost of one cold ``flwr-clientapp`` process: a bare interpreter, and one that
  imports medsilo's deployed ClientApp (torch, Flower, medsilo), each timed a few times;
* resilience, with the defaults (:mod:`medsilo.deploy.resilience_probe`, at least 3
  rounds): the coordinator killed with SIGKILL after round 1 and resumed while the sites keep
  running (*resume s*: from its SuperLink listening again to every site's SuperNode
  reconnected; *re-enrol s*: to every site enrolled in the resumed run), then one site's
  SuperNode killed with SIGKILL (*drop s*: until the coordinator drops it, with
  ``--straggler-timeout 5`` and ``training.min_sites: 2``).

Per-round time comes from each run's ``rounds.jsonl`` (``wall_s``: the round's broadcast to
its aggregation and, when it has an exchange of its own, its evaluation; with
train-with-evaluation a round's evaluation is part of the next round's exchange, so the
sum over rounds is the whole round phase either way); the median over rounds after the
first is reported (round 1 pays one-off costs), with its overhead over the engine's. Nothing
is asserted: the numbers are printed and written to ``OUT/deployment.json``.

``--workload resnet18-pneumonia`` runs a ResNet-18 workload instead, engine vs the warm
deployed runtime (:mod:`medsilo.bench.deployment_resnet`), with :func:`engine_run` and
:func:`deployed_run` from here.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from medsilo.config import parse_config
from medsilo.deploy.loopback import SITES, Loopback, heart_data, heart_experiment
from medsilo.deploy.resilience_probe import ResilienceTimes, restart_and_kill
from medsilo.runtime.simulation import run_federation
from medsilo.training.threads import intra_op_threads


@dataclass
class Variant:
    name: str
    coordinator_args: tuple[str, ...]
    site_args: tuple[str, ...]


_POLL = ("--poll-interval", "0.1")
_SITE_POLL = ("--poll-interval", "0.2")
VARIANTS = (
    Variant(
        "before: train + evaluate exchanges, cold process per message",
        (*_POLL, "--separate-evaluation"),
        (*_SITE_POLL, "--cold-clientapps"),
    ),
    Variant("one exchange per round, cold processes", _POLL, (*_SITE_POLL, "--cold-clientapps")),
    Variant("after: one exchange per round, warm processes", _POLL, _SITE_POLL),
)


@dataclass
class Measured:
    name: str
    round_s: float  # median seconds per round after round 1
    first_round_s: float
    total_s: float  # coordinator command start to exit
    setup_s: float  # total minus the rounds (SuperLink start, registration, enrolment, exit)
    max_weight_diff: float | None  # against the engine's final model


def _median_after_first(walls: list[float]) -> float:
    return statistics.median(walls[1:] if len(walls) > 1 else walls)


def engine_run(cfg: dict[str, Any]) -> tuple[Measured, list[np.ndarray]]:
    """The in-process engine on ``cfg`` with the run's intra-op ``threads``, as ``medsilo
    simulate`` and the deployed sites use them (restored afterwards): with another count,
    a convolution sums in another order and the models part ways (ResNet-18: by 40 after
    3 rounds of Adam)."""
    run_config = parse_config(cfg)
    with intra_op_threads(run_config.threads):
        t0 = time.perf_counter()
        result = run_federation(run_config)
        total = time.perf_counter() - t0
    walls = [float(r["wall_s"]) for r in result.rounds]
    measured = Measured(
        "in-process engine",
        _median_after_first(walls),
        walls[0],
        total,
        total - sum(walls),
        0.0,
    )
    return measured, result.weights


def deployed_run(
    cfg: dict[str, Any],
    variant: Variant,
    engine: list[np.ndarray],
    root: Path,
    sites: list[str] = SITES,
    site_data: Path | None = None,
    round_timeout: float = 120,
) -> Measured:
    """One deployed run of ``cfg`` on loopback; ``site_data``: every site's ``--data``
    (None: what the config names, or the default data root)."""
    lb = Loopback(root, cfg, sites=list(sites), site_data=site_data)
    try:
        t0 = time.perf_counter()
        coordinator = lb.start_coordinator(
            "run", *variant.coordinator_args, round_timeout=round_timeout
        )
        for site in lb.sites:
            lb.start_site(site, None, *variant.site_args)
        code = lb.wait(coordinator, 1800)
        total = time.perf_counter() - t0
    finally:
        lb.stop_all()
    if code != 0:
        raise RuntimeError(f"{variant.name}: coordinator exited {code}\n{lb.all_logs()}")
    walls = [float(r["wall_s"]) for r in lb.rounds()]
    with np.load(root / "run" / "final_weights.npz") as npz:
        weights = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    diff = max(float(np.abs(a - b).max()) for a, b in zip(weights, engine, strict=True))
    return Measured(
        variant.name, _median_after_first(walls), walls[0], total, total - sum(walls), diff
    )


def _resilience(rounds: int, local_steps: int, root: Path) -> ResilienceTimes:
    cfg = heart_experiment(max(rounds, 2), local_steps=local_steps, min_sites=2)
    lb = Loopback(root, cfg)
    try:
        times = restart_and_kill(lb, site_args=_SITE_POLL, coordinator_args=_POLL)
    finally:
        lb.stop_all()
    if times.exit_code != 0:
        raise RuntimeError(f"resilience run: coordinator exited {times.exit_code}\n{lb.all_logs()}")
    return times


def process_start_s(code: str, repeats: int = 3) -> float:
    """Median wall time of ``python -c code`` in a fresh interpreter (this venv's)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_deployment_benchmark(
    rounds: int, local_steps: int, out_dir: Path, console: Console
) -> dict[str, Any]:
    cfg = heart_experiment(rounds, local_steps=local_steps)
    console.print(f"workload: heart disease, 3 sites, {rounds} rounds x {local_steps} steps")
    engine, weights = engine_run(cfg)
    rows = [engine]
    for variant in VARIANTS:
        console.print(f"running {variant.name} ...")
        with tempfile.TemporaryDirectory(prefix="medsilo-bench-deploy-") as tmp:
            rows.append(deployed_run(cfg, variant, weights, Path(tmp), SITES, heart_data()))
    console.print("running resilience: coordinator restart, killed site ...")
    with tempfile.TemporaryDirectory(prefix="medsilo-bench-deploy-") as tmp:
        resilience = _resilience(rounds, local_steps, Path(tmp))
    bare = process_start_s("pass")
    client = process_start_s("import medsilo.runtime.flower.deployed_site")

    table = Table(title="seconds per round: deployed (loopback, TLS + node auth) vs in-process")
    columns = ("runtime", "s/round (median)", "overhead s/round", "x engine", "round 1 s")
    for col in (*columns, "set-up s", "total s"):
        table.add_column(col, justify="right" if col != "runtime" else "left")
    table.add_column("max |w - engine|", justify="right")
    for row in rows:
        table.add_row(
            row.name,
            f"{row.round_s:.3f}",
            f"{row.round_s - engine.round_s:.3f}",
            f"{row.round_s / engine.round_s:,.0f}",
            f"{row.first_round_s:.2f}",
            f"{row.setup_s:.1f}",
            f"{row.total_s:.1f}",
            f"{row.max_weight_diff:.1e}" if row.max_weight_diff is not None else "-",
        )
    console.print(table)
    kept = Table(title="coordinator restart (SuperLink database) and a killed site")
    for col in ("SuperLink up again s", "resume s", "re-enrol s", "drop s", "straggler s"):
        kept.add_column(col, justify="right")
    kept.add_row(
        f"{resilience.relisten_s:.1f}",
        f"{resilience.resume_s:.1f}",
        f"{resilience.reenrol_s:.1f}",
        f"{resilience.drop_s:.1f}",
        f"{resilience.straggler_timeout_s:g}",
    )
    console.print(kept)
    before, merged, after = rows[1], rows[2], rows[3]
    console.print(
        f"a cold flwr-clientapp process: bare interpreter {bare:.2f} s, importing the deployed "
        f"ClientApp {client:.2f} s; 3 sites on {cores()} cores, load average "
        f"{os.getloadavg()[0]:.1f}.\n"
        f"One exchange per round instead of two: {before.round_s - merged.round_s:.2f} s per "
        f"round saved; warm processes: {merged.round_s - after.round_s:.2f} s more; "
        f"before -> after {before.round_s:.2f} -> {after.round_s:.2f} s per round "
        f"({before.round_s / after.round_s:.1f}x)."
    )
    result = {
        "workload": {"rounds": rounds, "local_steps": local_steps, "sites": 3},
        "runs": [asdict(r) | {"overhead_s": r.round_s - engine.round_s} for r in rows],
        "process_start_s": {"bare_python": bare, "deployed_clientapp_import": client},
        "resilience": {
            k: v for k, v in asdict(resilience).items() if k != "site_logs_after_restart"
        },
        "load_average": list(os.getloadavg()),
        "cores": cores(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "deployment.json").write_text(json.dumps(result, indent=2))
    console.print(f"wrote {out_dir / 'deployment.json'}")
    return result


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
