"""Several runs side by side (algorithms x seeds) in one suite directory, plus its table."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress

from medsilo.config import RunConfig
from medsilo.experiment import ExperimentResult, run_experiment


@dataclass
class SuiteRow:
    name: str
    seeds: list[int]
    pooled_accuracy: list[float]
    mean_site_accuracy: list[float]
    per_site: dict[str, list[float]]
    loho_mean: list[float]
    uplink_kb_per_round: list[float]
    leakage: list[float]
    #: Epsilon spent (docs/privacy.md), for runs with a DP mechanism.
    epsilon: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        def ms(values: list[float]) -> dict[str, float] | None:
            if not values:
                return None
            return {"mean": float(np.mean(values)), "std": float(np.std(values))}

        return {
            "name": self.name,
            "seeds": self.seeds,
            "pooled_accuracy": ms(self.pooled_accuracy),
            "mean_site_accuracy": ms(self.mean_site_accuracy),
            "per_site": {k: ms(v) for k, v in self.per_site.items()},
            "loho_mean_accuracy": ms(self.loho_mean),
            "uplink_kb_per_round": ms(self.uplink_kb_per_round),
            "leakage": ms(self.leakage),
            "epsilon": ms(self.epsilon),
        }


def run_suite(
    configs: list[RunConfig],
    seeds: list[int],
    suite_dir: Path,
    title: str,
    progress: Progress | None = None,
) -> list[SuiteRow]:
    """Run every config for every seed into ``suite_dir/<name>[-s<seed>]``; summarise."""
    suite_dir.mkdir(parents=True, exist_ok=True)
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f"config names must be unique within a suite: {names}")
    runs: list[str] = []
    results: dict[str, list[ExperimentResult]] = defaultdict(list)
    overall = (
        progress.add_task(title, total=len(configs) * len(seeds), status="") if progress else None
    )
    for cfg in configs:
        for seed in seeds:
            run_cfg = cfg.with_overrides(seed=seed)
            folder = cfg.name if len(seeds) == 1 else f"{cfg.name}-s{seed}"
            task = None
            if progress is not None:
                total = cfg.training.rounds
                task = progress.add_task(f"  {folder}", total=total, status="")

            def on_round(rec: dict[str, Any], task: Any = task) -> None:
                if progress is not None and task is not None:
                    acc = (rec.get("test") or {}).get("accuracy")
                    status = f"acc {acc:.3f}" if acc is not None else ""
                    if "updates_target" in rec:  # asynchronous: progress in client updates
                        progress.update(
                            task,
                            total=rec["updates_target"],
                            completed=rec["updates_received"],
                            status=status,
                        )
                    else:
                        progress.update(task, advance=1, status=status)

            def on_loho(site: str, task: Any = task) -> None:
                if progress is not None and task is not None:
                    progress.update(task, status=f"leave-one-out: {site} done")

            res = run_experiment(
                run_cfg, suite_dir / folder, on_round=on_round, on_loho_site=on_loho
            )
            if progress is not None and task is not None:
                progress.remove_task(task)
            if progress is not None and overall is not None:
                progress.advance(overall)
            results[cfg.name].append(res)
            runs.append(folder)
    (suite_dir / "suite.json").write_text(json.dumps({"title": title, "runs": runs}, indent=2))
    rows = [_row(name, results[name]) for name in names]
    (suite_dir / "table.json").write_text(json.dumps([r.as_dict() for r in rows], indent=2))
    return rows


def _row(name: str, results: list[ExperimentResult]) -> SuiteRow:
    per_site: dict[str, list[float]] = defaultdict(list)
    for r in results:
        for site, m in (r.summary["final"]["per_site"] or {}).items():
            per_site[site].append(float(m["accuracy"]))
    return SuiteRow(
        name=name,
        seeds=[int(r.summary["seed"]) for r in results],
        pooled_accuracy=[float(r.summary["final"]["test"]["accuracy"]) for r in results],
        mean_site_accuracy=[float(r.summary["final"]["mean_site_accuracy"]) for r in results],
        per_site=dict(per_site),
        loho_mean=[float(r.summary["loho_mean_accuracy"]) for r in results if "loho" in r.summary],
        uplink_kb_per_round=[
            r.summary["bytes_up_total"] / 1000 / len(r.result.rounds) for r in results
        ],
        # leakage risk of the last round's transmitted updates (absent for baselines)
        leakage=[
            float(r.result.rounds[-1]["extra"]["leakage"])
            for r in results
            if "leakage" in r.result.rounds[-1].get("extra", {})
        ],
        epsilon=[float(r.summary["privacy"]["epsilon"]) for r in results if "privacy" in r.summary],
    )


def suite_title(configs: list[RunConfig], seeds: list[int]) -> str:
    """A title that says what was compared: ``"heart_fedavg vs heart_fedprox on
    heart_disease (seeds 0, 1, 2)"``; more than four configs are counted, not listed."""
    names = [c.name for c in configs]
    compared = " vs ".join(names) if len(names) <= 4 else f"{len(names)} configs"
    datasets = ", ".join(dict.fromkeys(c.data.dataset for c in configs))
    label = "seed" if len(seeds) == 1 else "seeds"
    return f"{compared} on {datasets} ({label} {', '.join(str(s) for s in seeds)})"
