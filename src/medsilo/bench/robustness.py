"""``medsilo bench robustness``: poisoning, robust aggregation and compression, side by side.

One federation (by default MNIST over 10 sites with Dirichlet(0.5) label skew, the small CNN
and ``mnist_fedavg``'s local training, on a reduced budget stated in the output) is trained
under several scenarios with the same seeds:

* poisoning: clean FedAvg; two sign-flipping sites (``-10 x`` their update) under FedAvg,
  Multi-Krum (``f = 2``), trimmed mean (``trim = 0.2``) and coordinate-wise median; the
  robust rules without an attack (their price); two Gaussian-noise sites (which the
  coordinator's norm check rejects); two label-flipping sites; one backdoor site;
* compression (clean FedAvg): fp16, int8, top-k 1% with and without error feedback,
  QSGD (4 levels, 512-entry buckets, no error feedback) and PowerSGD (rank 4).

For each it reports the final pooled test accuracy, its same-seed difference from clean
FedAvg (in points), the uplink bytes per round (the exact encoded payloads), the ratio of
clean fp32 FedAvg's uplink to it, the updates the coordinator rejected and, for the backdoor,
the attack's success rate. Results go to ``robustness.csv``, ``robustness.md`` and
``robustness.json`` (with per-round accuracy) in the output folder.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from medsilo.bench.mnist_setting import SETTING, MnistBudget
from medsilo.config import RunConfig, parse_config
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.simulation import FederationResult, run_federation


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    group: str
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Budget(MnistBudget):
    def describe(self) -> str:
        return f"{SETTING}, {self.local_work()}; {self.rounds} rounds; {self.samples()}"


FULL = Budget(rounds=10, max_train_samples=20000, max_test_samples=None, local_steps=None)
QUICK = Budget(rounds=1, max_train_samples=1000, max_test_samples=300, local_steps=2)

ATTACKERS = ["site-00", "site-01"]
FLIP = {"kind": "sign_flip", "sites": ATTACKERS, "scale": 10.0}
MULTI_KRUM = {"rule": "multi_krum", "f": 2}
TRIMMED = {"rule": "trimmed_mean", "trim": 0.2}

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("clean", "FedAvg, no attack", "poisoning"),
    Scenario("flip", "FedAvg, 2 sign-flippers x10", "poisoning", {"attack": FLIP}),
    Scenario(
        "flip_mkrum",
        "Multi-Krum f=2, 2 sign-flippers x10",
        "poisoning",
        {"attack": FLIP, "robust": MULTI_KRUM},
    ),
    Scenario(
        "flip_trim",
        "trimmed mean 0.2, 2 sign-flippers x10",
        "poisoning",
        {"attack": FLIP, "robust": TRIMMED},
    ),
    Scenario(
        "flip_median",
        "median, 2 sign-flippers x10",
        "poisoning",
        {"attack": FLIP, "robust": {"rule": "median"}},
    ),
    Scenario("mkrum", "Multi-Krum f=2, no attack", "poisoning", {"robust": MULTI_KRUM}),
    Scenario("trim", "trimmed mean 0.2, no attack", "poisoning", {"robust": TRIMMED}),
    Scenario(
        "gauss",
        "FedAvg, 2 Gaussian-noise sites (std 1)",
        "poisoning",
        {"attack": {"kind": "gaussian", "sites": ATTACKERS, "std": 1.0}},
    ),
    Scenario(
        "labelflip",
        "FedAvg, 2 label-flipping sites",
        "poisoning",
        {"attack": {"kind": "label_flip", "sites": ATTACKERS}},
    ),
    Scenario(
        "backdoor",
        "FedAvg, 1 backdoor site (boost 5)",
        "poisoning",
        {"attack": {"kind": "backdoor", "sites": ATTACKERS[:1], "target": 0, "boost": 5.0}},
    ),
    Scenario(
        "backdoor_mkrum",
        "Multi-Krum f=2, 1 backdoor site (boost 5)",
        "poisoning",
        {
            "attack": {"kind": "backdoor", "sites": ATTACKERS[:1], "target": 0, "boost": 5.0},
            "robust": MULTI_KRUM,
        },
    ),
    Scenario("fp16", "fp16", "compression", {"compression": {"codec": "fp16"}}),
    Scenario("int8", "int8", "compression", {"compression": {"codec": "int8"}}),
    Scenario(
        "topk_ef",
        "top-k 1% + error feedback",
        "compression",
        {"compression": {"codec": "topk", "k": 0.01}},
    ),
    Scenario(
        "topk",
        "top-k 1%, no error feedback",
        "compression",
        {"compression": {"codec": "topk", "k": 0.01, "error_feedback": False}},
    ),
    Scenario(
        "qsgd",
        "QSGD 4 levels, 512-entry buckets",
        "compression",
        {"compression": {"codec": "qsgd", "levels": 4}},
    ),
    Scenario(
        "powersgd",
        "PowerSGD rank 4 + EF",
        "compression",
        {"compression": {"codec": "powersgd", "rank": 4}},
    ),
)


def scenario_config(budget: Budget, scenario: Scenario, seed: int) -> RunConfig:
    return parse_config(budget.config(f"robustness-{scenario.key}", seed, **scenario.overrides))


@dataclass
class Run:
    scenario: str
    seed: int
    accuracy: float
    accuracy_per_round: list[float]
    bytes_up_per_round: float
    rejected: int
    skipped_rounds: int
    backdoor_success: float | None
    wall_s: float


def summarise(scenario: Scenario, seed: int, result: FederationResult, wall_s: float) -> Run:
    rounds = result.rounds
    last = rounds[-1]
    backdoor = last.get("backdoor")
    return Run(
        scenario=scenario.key,
        seed=seed,
        accuracy=float(last["test"]["accuracy"]),
        accuracy_per_round=[float(r["test"]["accuracy"]) for r in rounds if "test" in r],
        bytes_up_per_round=float(np.mean([r["bytes_up"] for r in rounds])),
        rejected=sum(len(r.get("rejected", [])) for r in rounds),
        skipped_rounds=sum(bool(r.get("skipped")) for r in rounds),
        backdoor_success=float(backdoor["success"]) if backdoor else None,
        wall_s=wall_s,
    )


@dataclass
class Row:
    key: str
    label: str
    group: str
    accuracy: float
    delta_points: float
    bytes_up_per_round: float
    fp32_ratio: float
    rejected: int
    backdoor_success: float | None


def table_rows(runs: list[Run], scenarios: tuple[Scenario, ...]) -> list[Row]:
    clean = {r.seed: r for r in runs if r.scenario == "clean"}
    rows = []
    for s in scenarios:
        mine = [r for r in runs if r.scenario == s.key]
        if not mine:
            continue
        pairs = [(r, clean[r.seed]) for r in mine if r.seed in clean]
        backdoor = [r.backdoor_success for r in mine if r.backdoor_success is not None]
        rows.append(
            Row(
                key=s.key,
                label=s.label,
                group=s.group,
                accuracy=float(np.mean([r.accuracy for r in mine])),
                delta_points=float(np.mean([100 * (r.accuracy - c.accuracy) for r, c in pairs]))
                if pairs
                else float("nan"),
                bytes_up_per_round=float(np.mean([r.bytes_up_per_round for r in mine])),
                fp32_ratio=float(
                    np.mean([c.bytes_up_per_round / r.bytes_up_per_round for r, c in pairs])
                )
                if pairs
                else float("nan"),
                rejected=sum(r.rejected for r in mine),
                backdoor_success=float(np.mean(backdoor)) if backdoor else None,
            )
        )
    return rows


HEADERS = (
    "scenario",
    "accuracy",
    "vs clean (points)",
    "uplink kB/round",
    "fp32/this bytes",
    "rejected",
    "backdoor success",
)


def _cells(row: Row) -> list[str]:
    return [
        row.label,
        f"{100 * row.accuracy:.2f}%",
        f"{row.delta_points:+.2f}",
        f"{row.bytes_up_per_round / 1000:,.1f}",
        f"{row.fp32_ratio:.1f}x",
        str(row.rejected),
        "" if row.backdoor_success is None else f"{100 * row.backdoor_success:.1f}%",
    ]


def markdown(rows: list[Row], budget: Budget, seeds: list[int]) -> str:
    lines = [
        f"Setting: {budget.describe()}; seeds {', '.join(map(str, seeds))}; attackers "
        f"{', '.join(ATTACKERS)}.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---" for _ in HEADERS) + "|",
    ]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def run_robustness_benchmark(
    quick: bool = False,
    seeds: list[int] | None = None,
    out_dir: Path = Path("runs/bench-robustness"),
    console: Console | None = None,
    only: list[str] | None = None,
    budget: Budget | None = None,
    on_run: Callable[[Run], None] | None = None,
) -> list[Row]:
    """Run the scenarios (``only``: their keys; clean FedAvg always runs) and write tables."""
    console = console or Console()
    budget = budget or (QUICK if quick else FULL)
    seeds = seeds or [0]
    chosen = tuple(s for s in SCENARIOS if only is None or s.key in only or s.key == "clean")
    unknown = sorted(set(only or []) - {s.key for s in SCENARIOS})
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; choose from {[s.key for s in SCENARIOS]}")
    runs: list[Run] = []
    for seed in seeds:
        prep = PreparedFederation.build(scenario_config(budget, chosen[0], seed))
        for s in chosen:
            cfg = scenario_config(budget, s, seed)
            t0 = time.perf_counter()
            result = run_federation(cfg, prepared=prep)
            run = summarise(s, seed, result, time.perf_counter() - t0)
            runs.append(run)
            console.print(
                f"seed {seed} {s.label}: accuracy {100 * run.accuracy:.2f}% ({run.wall_s:.0f} s)",
                highlight=False,
            )
            if on_run is not None:
                on_run(run)
    rows = table_rows(runs, chosen)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "robustness.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([f.name for f in Row.__dataclass_fields__.values()])
        for r in rows:
            writer.writerow(list(asdict(r).values()))
    (out_dir / "robustness.md").write_text(markdown(rows, budget, seeds))
    (out_dir / "robustness.json").write_text(
        json.dumps(
            {
                "setting": budget.describe(),
                "seeds": seeds,
                "attackers": ATTACKERS,
                "rows": [asdict(r) for r in rows],
                "runs": [asdict(r) for r in runs],
            },
            indent=2,
        )
    )
    table = Table(title=f"Robustness and compression ({budget.describe()})")
    for h in HEADERS:
        table.add_column(h, justify="left" if h == "scenario" else "right")
    for r in rows:
        table.add_row(*_cells(r))
    console.print(table)
    return rows
