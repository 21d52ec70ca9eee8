"""Several runs side by side (algorithms x seeds) in one suite directory, plus its table.

A suite directory holds one folder per run, ``suite.json`` (its title and the run folders, in
order: the suite's index) and ``table.json`` (one row per config, over its seeds). Every run
of a call is planned and checked (:func:`plan_suite`) before anything is written: repeated
config names or seeds, a folder that is not a suite, a run folder that already exists and
any config that cannot run are refused up front. A suite directory can be reused with new
run names: the new runs are added to its index, never in place of the earlier ones, and
its table covers them all. The index is rewritten after each run, so an interrupted suite
still lists every run that has a ``summary.json``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress

from medsilo.config import ConfigError, RunConfig
from medsilo.experiment import RunDirError, run_experiment
from medsilo.report.runs import SUITE_FILE, SUMMARY_FILE, RunResult, load_run
from medsilo.runtime.preflight import preflight
from medsilo.runtime.round_record import RoundRecord

TABLE_FILE = "table.json"


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
    #: Share of the updates sent that the coordinator rejected, per run.
    rejected_fraction: list[float] = field(default_factory=list)
    #: Run folder -> why it failed (``summary.json`` ``failure_reason``).
    failures: dict[str, str] = field(default_factory=dict)
    #: Run folder -> why it did not finish (``summary.json`` ``incomplete_reason``).
    incomplete: dict[str, str] = field(default_factory=dict)
    #: The metric the table leads with (``evaluation.lead_metric``; AUROC for binary tasks).
    lead_metric: str | None = None
    #: Pooled clinical metrics of the final model per run: metric -> values over seeds.
    clinical: dict[str, list[float]] = field(default_factory=dict)
    #: The lead metric's 95% bootstrap interval of each run, pooled over the sites.
    lead_interval: list[tuple[float, float]] = field(default_factory=list)

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
            "rejected_fraction": ms(self.rejected_fraction),
            "failures": self.failures,
            "incomplete": self.incomplete,
            "lead_metric": self.lead_metric,
            "clinical": {k: ms(v) for k, v in self.clinical.items()},
            "lead_interval": [list(ci) for ci in self.lead_interval],
        }


@dataclass(frozen=True)
class PlannedRun:
    cfg: RunConfig  # with the run's seed
    folder: str


def plan_suite(configs: list[RunConfig], seeds: list[int], suite_dir: Path) -> list[PlannedRun]:
    """Every run of ``configs`` x ``seeds`` with its folder, each checked before training
    (:func:`~medsilo.runtime.preflight.preflight`); raises before anything is written."""
    names = [c.name for c in configs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(
            f"config name(s) {', '.join(repeated)} given more than once: each config of a "
            "suite needs its own name (its run folder), set 'name:' in the config"
        )
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise ConfigError(f"seed(s) {twice} given more than once")
    _check_suite_dir(suite_dir)
    plan = [
        PlannedRun(
            cfg.with_overrides(seed=seed), cfg.name if len(seeds) == 1 else f"{cfg.name}-s{seed}"
        )
        for cfg in configs
        for seed in seeds
    ]
    taken = [p.folder for p in plan if (suite_dir / p.folder).exists()]
    if taken:
        raise RunDirError(
            f"{suite_dir} already holds run(s) {', '.join(taken)}; a suite never overwrites "
            "a run: choose another --out, or give the config another name"
        )
    for p in plan:
        preflight(p.cfg)
    return plan


def _check_suite_dir(suite_dir: Path) -> None:
    if (suite_dir / SUMMARY_FILE).exists():
        raise RunDirError(f"{suite_dir} is a run directory, not a suite: choose another --out")
    if suite_dir.is_file():
        raise RunDirError(f"{suite_dir} is a file, not a suite directory")
    if suite_dir.is_dir() and any(suite_dir.iterdir()) and not (suite_dir / SUITE_FILE).is_file():
        raise RunDirError(
            f"{suite_dir} is not empty and has no {SUITE_FILE} (not a medsilo suite): "
            "choose another --out"
        )


def read_index(suite_dir: Path) -> tuple[str | None, list[str]]:
    """The title and run folders ``suite.json`` lists (``None, []`` when there is none)."""
    path = suite_dir / SUITE_FILE
    if not path.is_file():
        return None, []
    try:
        meta = json.loads(path.read_text())
        title, runs = meta.get("title"), meta.get("runs", [])
    except (ValueError, AttributeError):
        raise RunDirError(f"{path} is not a suite index (JSON with 'title' and 'runs')") from None
    if not isinstance(runs, list) or not all(isinstance(r, str) for r in runs):
        raise RunDirError(f"{path}: 'runs' must be a list of run folder names")
    return (title if isinstance(title, str) else None), runs


def write_index(suite_dir: Path, title: str, runs: list[str]) -> None:
    (suite_dir / SUITE_FILE).write_text(json.dumps({"title": title, "runs": runs}, indent=2))


def run_suite(
    configs: list[RunConfig],
    seeds: list[int],
    suite_dir: Path,
    title: str,
    progress: Progress | None = None,
) -> list[SuiteRow]:
    """Run every config for every seed into ``suite_dir/<name>[-s<seed>]``; summarise every
    run of the suite (earlier calls' included)."""
    plan = plan_suite(configs, seeds, suite_dir)
    created = not suite_dir.exists()
    suite_dir.mkdir(parents=True, exist_ok=True)
    earlier_title, runs = read_index(suite_dir)
    if earlier_title is not None and earlier_title != title:
        title = f"{earlier_title}; {title}"
    write_index(suite_dir, title, runs)
    try:
        _run_plan(plan, suite_dir, title, runs, progress)
    except BaseException:
        if created:
            _remove_if_empty(suite_dir)
        raise
    rows = suite_rows(suite_dir, runs)
    (suite_dir / TABLE_FILE).write_text(json.dumps([r.as_dict() for r in rows], indent=2))
    return rows


def _remove_if_empty(suite_dir: Path) -> None:
    """A suite folder this call created, whose first run was refused before writing its own
    folder (a refusal that needs the run's start: an unreachable anchoring node, a missing
    quorum), holds only its empty index: remove it, so a refused command leaves nothing."""
    if [p.name for p in suite_dir.iterdir()] == [SUITE_FILE]:
        (suite_dir / SUITE_FILE).unlink()
        suite_dir.rmdir()


def _run_plan(
    plan: list[PlannedRun],
    suite_dir: Path,
    title: str,
    runs: list[str],
    progress: Progress | None,
) -> None:
    overall = progress.add_task(title, total=len(plan), status="") if progress else None
    for planned in plan:
        task = None
        if progress is not None:
            total = planned.cfg.training.rounds
            task = progress.add_task(f"  {planned.folder}", total=total, status="")

        def on_round(rec: RoundRecord, task: Any = task) -> None:
            if progress is not None and task is not None:
                status = f"acc {rec.test.accuracy:.3f}" if rec.test is not None else ""
                if rec.updates_target is not None:  # asynchronous: progress in updates
                    progress.update(
                        task,
                        total=rec.updates_target,
                        completed=rec.updates_received,
                        status=status,
                    )
                else:
                    progress.update(task, advance=1, status=status)

        def on_loho(site: str, task: Any = task) -> None:
            if progress is not None and task is not None:
                progress.update(task, status=f"leave-one-out: {site} done")

        run_dir = suite_dir / planned.folder
        try:
            run_experiment(planned.cfg, run_dir, on_round=on_round, on_loho_site=on_loho)
        finally:  # an interrupted run with a summary stays in the index
            if (run_dir / SUMMARY_FILE).is_file():
                runs.append(planned.folder)
                write_index(suite_dir, title, runs)
        if progress is not None and task is not None:
            progress.remove_task(task)
        if progress is not None and overall is not None:
            progress.advance(overall)


def suite_rows(suite_dir: Path, folders: list[str]) -> list[SuiteRow]:
    """One row per config name, over its runs among ``folders`` (read from disk)."""
    grouped: dict[str, list[RunResult]] = defaultdict(list)
    for folder in folders:
        run = load_run(suite_dir / folder)
        grouped[run.summary.name].append(run)
    return [_row(name, runs) for name, runs in grouped.items()]


def _numbers(values: list[object]) -> list[float]:
    return [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]


def _row(name: str, runs: list[RunResult]) -> SuiteRow:
    per_site: dict[str, list[float]] = defaultdict(list)
    for r in runs:
        for site, m in (r.summary.final_per_site or {}).items():
            if m.accuracy is not None:
                per_site[site].append(m.accuracy)
    raw = [r.summary.raw for r in runs]
    finals = [_clinical(s) for s in raw]
    leads = [str(f["lead"]) for f in finals if f.get("lead")]
    lead = leads[0] if leads else None
    clinical: dict[str, list[float]] = defaultdict(list)
    for final in finals:
        for metric, value in (final.get("pooled") or {}).items():
            clinical[metric] += _numbers([value])
    return SuiteRow(
        name=name,
        seeds=[r.summary.seed for r in runs if r.summary.seed is not None],
        pooled_accuracy=_numbers(
            [r.summary.final_test.accuracy if r.summary.final_test else None for r in runs]
        ),
        mean_site_accuracy=_numbers([r.summary.final_mean_site_accuracy for r in runs]),
        per_site=dict(per_site),
        loho_mean=_numbers([s.get("loho_mean_accuracy") for s in raw]),
        uplink_kb_per_round=_numbers(
            [
                _bytes(s.get("bytes_up_total")) / 1000 / len(r.rounds)
                for s, r in zip(raw, runs, strict=True)
                if r.rounds
            ]
        ),
        # leakage risk of the last round's transmitted updates (absent for baselines)
        leakage=_numbers([r.rounds[-1].extra.get("leakage") for r in runs if r.rounds]),
        epsilon=_numbers([_epsilon(s.get("privacy")) for s in raw]),
        rejected_fraction=_numbers([s.get("rejected_fraction") for s in raw]),
        failures={
            r.path.name: str(s.get("failure_reason", "failed"))
            for r, s in zip(runs, raw, strict=True)
            if s.get("failed") is True
        },
        incomplete={
            r.path.name: str(s.get("incomplete_reason", "did not finish"))
            for r, s in zip(runs, raw, strict=True)
            if s.get("complete") is False
        },
        lead_metric=lead,
        clinical=dict(clinical),
        lead_interval=[ci for s in raw if (ci := _interval(s, lead)) is not None],
    )


def _clinical(summary: dict[str, object]) -> dict[str, Any]:
    """The final clinical metrics of a summary (``final.metrics``), or an empty mapping."""
    final = summary.get("final")
    metrics = final.get("metrics") if isinstance(final, dict) else None
    return metrics if isinstance(metrics, dict) else {}


def _interval(summary: dict[str, object], metric: str | None) -> tuple[float, float] | None:
    intervals = summary.get("metric_intervals")
    if metric is None or not isinstance(intervals, dict):
        return None
    low, high = (intervals.get("pooled") or {}).get(metric, (None, None))
    return (float(low), float(high)) if low is not None and high is not None else None


def _bytes(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _epsilon(privacy: object) -> object:
    return privacy.get("epsilon") if isinstance(privacy, dict) else None


def suite_title(configs: list[RunConfig], seeds: list[int]) -> str:
    """A title that says what was compared: ``"heart_fedavg vs heart_fedprox on
    heart_disease (seeds 0, 1, 2)"``; more than four configs are counted, not listed."""
    names = [c.name for c in configs]
    compared = " vs ".join(names) if len(names) <= 4 else f"{len(names)} configs"
    datasets = ", ".join(dict.fromkeys(c.data.dataset for c in configs))
    label = "seed" if len(seeds) == 1 else "seeds"
    return f"{compared} on {datasets} ({label} {', '.join(str(s) for s in seeds)})"
