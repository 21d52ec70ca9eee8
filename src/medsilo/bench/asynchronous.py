"""``medsilo bench async``: time to accuracy of synchronous FedAvg vs FedBuff and FedAsync.

One federation (by default MNIST over 10 sites with Dirichlet(0.5) label skew, the small CNN
and ``mnist_fedavg``'s local training: one local epoch, batch 32, SGD lr 0.05) in which two
sites (``site-00`` and ``site-01``) train ten times slower than the others. Every site
processes ``examples_per_s`` training examples per second at the reference speed and has a
100/100 Mbit/s, 20 ms link (:mod:`medsilo.network`); the slow ones take ``slowdown x`` as
long for the same work. The same seeds and the same prepared federation run:

* synchronous FedAvg (every site every round; a round lasts until the slowest site's update
  has arrived);
* synchronous FedAvg with a 10 s round timeout (``sync_timeout``, on request): the
  coordinator stops waiting after 10 s, so the slow sites' updates (about 35-40 s at the
  default speeds) are always late and never aggregated: the "drop the stragglers" baseline;
* FedBuff (buffer of ``buffer_size`` updates, each weighted by ``1 / sqrt(1 + staleness)``,
  server SGD with lr 1);
* FedAsync (``alpha = 0.6``, polynomial staleness ``(1 + tau)^-0.5``), unless left out.

Each run stops once its pooled test accuracy reaches ``target`` (evaluated every round, or
every 10 applied updates for the asynchronous ones) or after the budget's rounds (the
asynchronous ones: as many local trainings). The table gives the simulated time to the
target, the rounds or aggregations and local trainings it took, and the ratio of the
synchronous time to each asynchronous one. Results go to ``async.csv``, ``async.md``,
``async.json`` and ``async.png`` (accuracy against simulated time).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from medsilo.bench.mnist_setting import SETTING, MnistBudget
from medsilo.config import RunConfig, parse_config
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.round_record import RoundRecord
from medsilo.runtime.simulation import run_federation

SLOW_SITES = ("site-00", "site-01")


@dataclass(frozen=True)
class Budget(MnistBudget):
    target: float
    examples_per_s: float = 2000.0
    slowdown: float = 10.0
    buffer_size: int = 5

    def describe(self) -> str:
        return (
            f"{SETTING}, {self.local_work()}; "
            f"{self.samples()}; {self.examples_per_s:g} examples/s, "
            f"{', '.join(SLOW_SITES)} {self.slowdown:g}x slower; 100 Mbit/s links; "
            f"FedBuff K={self.buffer_size}; target {100 * self.target:g}% within "
            f"{self.rounds} rounds (async: as many local trainings)"
        )


FULL = Budget(
    rounds=15, max_train_samples=None, max_test_samples=None, local_steps=None, target=0.97
)
QUICK = Budget(rounds=2, max_train_samples=600, max_test_samples=200, local_steps=2, target=0.3)

MODES: dict[str, tuple[str, dict[str, Any]]] = {
    "sync": ("FedAvg, synchronous", {"mode": "sync"}),
    "sync_timeout": (
        "FedAvg, synchronous, 10 s round timeout",
        {"mode": "sync", "round_timeout_s": 10.0},
    ),
    "fedbuff": ("FedBuff", {"mode": "fedbuff"}),
    "fedasync": (
        "FedAsync (alpha 0.6, poly 0.5)",
        {"mode": "fedasync", "alpha": 0.6, "staleness": {"function": "polynomial", "a": 0.5}},
    ),
}


def mode_config(budget: Budget, mode: str, seed: int) -> RunConfig:
    asynchrony = dict(MODES[mode][1])
    if mode == "fedbuff":
        asynchrony["buffer_size"] = budget.buffer_size
    compute = {"examples_per_s": budget.examples_per_s}
    slow = {"compute": {**compute, "slowdown": budget.slowdown}}
    return parse_config(
        budget.config(
            f"async-{mode}",
            seed,
            sites={
                "default": {"compute": compute},
                "overrides": {site: slow for site in SLOW_SITES},
            },
            asynchrony=asynchrony,
        )
    )


def time_to_accuracy(records: Sequence[Mapping[str, Any]], target: float) -> float | None:
    """Simulated clock of the first evaluated record with pooled test accuracy >= target."""
    for rec in records:
        test = rec.get("test")
        if test is not None and float(test["accuracy"]) >= target:
            return float(rec["sim_clock_s"])
    return None


class _TargetReached(Exception):
    """Raised from the round callback to stop a run once it reached the target."""


@dataclass
class Run:
    mode: str
    seed: int
    time_to_target_s: float | None
    steps_to_target: int | None  # rounds (sync) or aggregations (async)
    updates_to_target: int | None  # local trainings received
    final_accuracy: float
    sim_clock_s: float
    curve: list[tuple[float, float]]  # (sim clock, pooled test accuracy)
    mean_staleness: float | None
    #: Mean test accuracy on the slow sites' and on the other sites' own test sets, at the
    #: evaluation that reached the target (else the last one): does asynchrony leave the
    #: slow sites' data behind?
    slow_site_accuracy: float | None
    fast_site_accuracy: float | None
    wall_s: float


def run_mode(
    budget: Budget, mode: str, seed: int, prep: PreparedFederation, stop_at_target: bool
) -> Run:
    cfg = mode_config(budget, mode, seed)
    records: list[RoundRecord] = []

    def on_round(rec: RoundRecord) -> None:
        records.append(rec)
        test = rec.get("test")
        if stop_at_target and test is not None and test["accuracy"] >= budget.target:
            raise _TargetReached

    t0 = time.perf_counter()
    with contextlib.suppress(_TargetReached):
        run_federation(cfg, prepared=prep, on_round=on_round)
    wall = time.perf_counter() - t0
    evaluated = [r for r in records if r.get("test") is not None]
    hit = next(
        (
            i
            for i, r in enumerate(records)
            if r.get("test") is not None and r["test"]["accuracy"] >= budget.target
        ),
        None,
    )
    stale = [s for r in records for s in r.get("staleness", [])]
    at = records[hit] if hit is not None else (evaluated[-1] if evaluated else {})
    per_site = at.get("per_site") or {}
    slow = [float(v["accuracy"]) for k, v in per_site.items() if k in SLOW_SITES and v["n"]]
    fast = [float(v["accuracy"]) for k, v in per_site.items() if k not in SLOW_SITES and v["n"]]
    sync = MODES[mode][1]["mode"] == "sync"
    received = [r.get("updates_received") for r in records]
    return Run(
        mode=mode,
        seed=seed,
        time_to_target_s=time_to_accuracy(records, budget.target),
        steps_to_target=None if hit is None else int(records[hit]["round"]),
        updates_to_target=None
        if hit is None
        else (
            sum(len(r["sites"]) - len(r.get("dropped", [])) for r in records[: hit + 1])
            if sync
            else received[hit]
        ),
        final_accuracy=float(evaluated[-1]["test"]["accuracy"]) if evaluated else math.nan,
        sim_clock_s=float(records[-1]["sim_clock_s"]) if records else 0.0,
        curve=[(float(r["sim_clock_s"]), float(r["test"]["accuracy"])) for r in evaluated],
        mean_staleness=float(np.mean(stale)) if stale else None,
        slow_site_accuracy=float(np.mean(slow)) if slow else None,
        fast_site_accuracy=float(np.mean(fast)) if fast else None,
        wall_s=wall,
    )


HEADERS = (
    "mode",
    "time to target (sim s)",
    "sync / this",
    "rounds or aggregations",
    "local trainings",
    "accuracy at stop",
    "slow / other sites' acc.",
    "mean staleness",
)


def _fmt(value: float | None, spec: str) -> str:
    return "not reached" if value is None else format(value, spec)


def table_rows(runs: list[Run]) -> list[list[str]]:
    """One row per run; ``sync / this`` pairs each run with the same seed's sync run."""
    sync = {r.seed: r for r in runs if r.mode == "sync"}
    rows = []
    for r in runs:
        base = sync.get(r.seed)
        ratio = (
            base.time_to_target_s / r.time_to_target_s
            if base is not None and base.time_to_target_s and r.time_to_target_s
            else None
        )
        label = MODES[r.mode][0] + (f" (seed {r.seed})" if len(sync) > 1 else "")
        rows.append(
            [
                label,
                _fmt(r.time_to_target_s, ".1f"),
                "" if ratio is None else f"{ratio:.2f}x",
                "" if r.steps_to_target is None else str(r.steps_to_target),
                "" if r.updates_to_target is None else str(r.updates_to_target),
                f"{100 * r.final_accuracy:.2f}%",
                ""
                if r.slow_site_accuracy is None or r.fast_site_accuracy is None
                else f"{100 * r.slow_site_accuracy:.1f}% / {100 * r.fast_site_accuracy:.1f}%",
                "" if r.mean_staleness is None else f"{r.mean_staleness:.2f}",
            ]
        )
    return rows


def markdown(runs: list[Run], budget: Budget, seeds: list[int]) -> str:
    lines = [
        f"Setting: {budget.describe()}; seeds {', '.join(map(str, seeds))}.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---" for _ in HEADERS) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(runs)]
    return "\n".join(lines) + "\n"


def plot(runs: list[Run], budget: Budget, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), layout="constrained")
    try:
        for i, r in enumerate(runs):
            xs, ys = zip(*r.curve, strict=True) if r.curve else ((), ())
            ax.plot(xs, ys, marker="o", ms=3, color=f"C{i}", label=f"{MODES[r.mode][0]} s{r.seed}")
        ax.axhline(budget.target, color="grey", ls="--", lw=1, label=f"target {budget.target:g}")
        ax.set_xlabel("Simulated time (s)")
        ax.set_ylabel("Pooled test accuracy")
        ax.set_title("Accuracy vs simulated time: two sites 10x slower")
        ax.grid(True, alpha=0.35)
        ax.legend(loc="lower right")
        fig.savefig(path, dpi=120, facecolor="white")
    finally:
        plt.close(fig)
    return path


def run_async_benchmark(
    quick: bool = False,
    seeds: list[int] | None = None,
    out_dir: Path = Path("runs/bench-async"),
    console: Console | None = None,
    modes: Sequence[str] = ("sync", "fedbuff", "fedasync"),
    budget: Budget | None = None,
    stop_at_target: bool = True,
) -> list[Run]:
    """Run each mode for each seed on one prepared federation and write the tables."""
    console = console or Console()
    budget = budget or (QUICK if quick else FULL)
    seeds = seeds or [0]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise ValueError(f"unknown mode(s) {unknown}; choose from {list(MODES)}")
    runs: list[Run] = []
    for seed in seeds:
        prep = PreparedFederation.build(mode_config(budget, "sync", seed))
        for mode in modes:
            run = run_mode(budget, mode, seed, prep, stop_at_target)
            runs.append(run)
            console.print(
                f"seed {seed} {MODES[mode][0]}: time to {100 * budget.target:g}%: "
                f"{_fmt(run.time_to_target_s, '.1f')} (sim s), last accuracy "
                f"{100 * run.final_accuracy:.2f}% ({run.wall_s:.0f} s wall)",
                highlight=False,
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "async.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        fields = [f for f in Run.__dataclass_fields__ if f != "curve"]
        writer.writerow(fields)
        for r in runs:
            writer.writerow([asdict(r)[f] for f in fields])
    (out_dir / "async.md").write_text(markdown(runs, budget, seeds))
    (out_dir / "async.json").write_text(
        json.dumps(
            {
                "setting": budget.describe(),
                "budget": asdict(budget),
                "seeds": seeds,
                "runs": [asdict(r) for r in runs],
            },
            indent=2,
        )
    )
    plot(runs, budget, out_dir / "async.png")
    table = Table(title=f"Time to accuracy ({budget.describe()})")
    for h in HEADERS:
        table.add_column(h, justify="left" if h == "mode" else "right")
    for row in table_rows(runs):
        table.add_row(*row)
    console.print(table)
    return runs
