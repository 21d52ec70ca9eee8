"""``medsilo bench paper``: an honest reproduction of the CC-PGD paper's comparison table.

Runs FedAvg, DP-FedAvg, FedProx, CC-PGD (three operating points) and pooled training on
MNIST and the CIFAR-10 subset (IID and Dirichlet(0.5), five sites) and on the heart-disease
natural split (four hospitals), all with the same seeds, and writes

* ``paper_table.csv`` / ``paper_table.md`` (and a printed table): accuracy, the leakage risk
  of transmitted updates (:mod:`medsilo.confidential.leakage`, the same metric for every
  algorithm), the empirical leakage column (mean PSNR in dB of a gradient-inversion attack
  on single-image, 5-local-step updates of the first site, first seed only:
  :func:`medsilo.audit.inversion_audit.benchmark_inversion_psnr`, docs/privacy-audits.md;
  higher = more leakage; off when the plan's ``inversion_iterations`` is 0),
  bytes per round (uplink, downlink, total; :mod:`medsilo.wire`), simulated seconds per round
  (:mod:`medsilo.network`, stated profile below) and same-seed differences of CC-PGD vs FedAvg;
* ``frontier.csv`` / ``frontier.png``: CC-PGD over a grid of ``(lam, mu)`` with a check of the
  monotonicity of each knob.

The network profile: every site at 100/100 Mbit/s and 20 ms except the last site, a rural
hospital at 5 Mbit/s up, 20 Mbit/s down, 40 ms. Platforms: every site on SEV-SNP with no
listed vulnerability except the second site, an SGX host that still lists LVI
(CVE-2020-0551), so CC-PGD's exploit indicator is 1 there.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from medsilo.config import RunConfig, parse_config
from medsilo.progress import progress_bars
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.simulation import FederationResult, run_federation
from medsilo.training.threads import intra_op_threads

EMPIRICAL_NA = "n/a: not measured"
EMPIRICAL_NO_UPDATES = "n/a: sends no updates"
FAST = {"uplink_mbps": 100.0, "downlink_mbps": 100.0, "latency_ms": 20.0}
RURAL = {"uplink_mbps": 5.0, "downlink_mbps": 20.0, "latency_ms": 40.0}
SAFE_PLATFORM = {"kind": "sev-snp", "tcb_version": "seed-list"}
EXPOSED_PLATFORM = {
    "kind": "sgx",
    "tcb_version": "seed-list",
    "known_vulnerabilities": ["CVE-2020-0551"],
}


@dataclass(frozen=True)
class Setting:
    dataset: str
    partition: str
    model: str

    @property
    def label(self) -> str:
        part = "dirichlet(0.5)" if self.partition == "dirichlet" else self.partition
        return f"{self.dataset}/{part}"


@dataclass(frozen=True)
class PaperPlan:
    settings: tuple[Setting, ...]
    methods: dict[str, dict[str, Any]]
    seeds: tuple[int, ...]
    rounds: int
    local_steps: int
    batch_size: int
    lr: float
    max_train_samples: int | None
    max_test_samples: int | None
    lam_grid: tuple[float, ...]
    mu_grid: tuple[float, ...]
    frontier_setting: Setting
    #: attacker iterations of the empirical-leakage (gradient-inversion) measurement; 0: off
    inversion_iterations: int = 0


#: CC-PGD's main row uses the config defaults; the two others switch one knob off.
METHODS: dict[str, dict[str, Any]] = {
    "fedavg": {"name": "fedavg"},
    "dp_fedavg": {"name": "dp_fedavg", "clip": 1.0, "noise_multiplier": 0.1},
    "fedprox": {"name": "fedprox", "mu": 0.01},
    "ccpgd": {"name": "ccpgd"},
    "ccpgd_privacy": {"name": "ccpgd", "mu": 0.0},
    "ccpgd_comm": {"name": "ccpgd", "lam": 0.0, "mu": 0.02},
    "pooled": {"name": "pooled"},
}
CCPGD_ROWS = ("ccpgd", "ccpgd_privacy", "ccpgd_comm")


def plan(quick: bool) -> PaperPlan:
    if quick:
        image_model = "logistic"
        settings = (
            Setting("mnist", "iid", image_model),
            Setting("mnist", "dirichlet", image_model),
            Setting("cifar10_subset", "iid", image_model),
            Setting("cifar10_subset", "dirichlet", image_model),
            Setting("heart_disease", "natural", "logistic"),
        )
        return PaperPlan(
            settings=settings,
            methods=METHODS,
            seeds=(0, 1),
            rounds=20,
            local_steps=20,
            batch_size=32,
            lr=0.1,
            max_train_samples=5000,
            max_test_samples=2000,
            lam_grid=(0.0, 0.03, 0.1, 0.3),
            mu_grid=(0.0, 0.01, 0.02, 0.04),
            frontier_setting=settings[0],
            inversion_iterations=200,
        )
    settings = (
        Setting("mnist", "iid", "cnn"),
        Setting("mnist", "dirichlet", "cnn"),
        Setting("cifar10_subset", "iid", "cnn"),
        Setting("cifar10_subset", "dirichlet", "cnn"),
        Setting("heart_disease", "natural", "logistic"),
    )
    return PaperPlan(
        settings=settings,
        methods=METHODS,
        seeds=(0, 1, 2),
        rounds=50,
        local_steps=50,
        batch_size=32,
        lr=0.05,
        max_train_samples=None,
        max_test_samples=None,
        lam_grid=(0.0, 0.01, 0.03, 0.1, 0.3),
        mu_grid=(0.0, 0.005, 0.01, 0.02, 0.04),
        frontier_setting=settings[0],
        inversion_iterations=400,
    )


def setting_data_and_sites(
    s: Setting,
    max_train_samples: int | None,
    max_test_samples: int | None,
    site_names: list[str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A setting's ``data`` section and §6's per-site overrides (the last site rural, the
    second an SGX host listing LVI): one definition for the first and the second pass."""
    data: dict[str, Any] = {"dataset": s.dataset, "partition": s.partition}
    if s.partition == "natural":
        data["standardize"] = "federated"
    else:
        data.update(num_sites=5, alpha=0.5)
        data.update(max_train_samples=max_train_samples, max_test_samples=max_test_samples)
    overrides: dict[str, Any] = {}
    if site_names:
        overrides[site_names[-1]] = {"network": RURAL}
        if len(site_names) > 1:
            overrides[site_names[1]] = {"platform": EXPOSED_PLATFORM}
    return data, overrides


def run_config(
    p: PaperPlan, s: Setting, algorithm: dict[str, Any], seed: int, site_names: list[str]
) -> RunConfig:
    data, overrides = setting_data_and_sites(s, p.max_train_samples, p.max_test_samples, site_names)
    return parse_config(
        {
            "name": f"paper-{s.dataset}-{s.partition}-{algorithm['name']}",
            "seed": seed,
            "data": data,
            "model": {"name": s.model},
            "algorithm": algorithm,
            "training": {
                "rounds": p.rounds,
                # pooled training gets the federation's total step budget per round (all sites'
                # steps), so "gap to pooled" compares equal amounts of computation
                "local_steps": p.local_steps
                * (max(len(site_names), 1) if algorithm["name"] == "pooled" else 1),
                "batch_size": p.batch_size,
                "lr": p.lr,
            },
            "evaluation": {"every": p.rounds},
            "sites": {
                "default": {"network": FAST, "platform": SAFE_PLATFORM},
                "overrides": overrides,
            },
        },
        source="bench paper",
    )


@dataclass
class RunSummary:
    setting: str
    method: str
    seed: int
    accuracy: float
    leakage: float | None
    bytes_up: float | None
    bytes_down: float | None
    sim_s: float | None
    sparsity: float | None
    wall_s: float
    lam: float | None = None
    mu: float | None = None
    inversion_psnr: float | None = None

    @property
    def bytes_total(self) -> float | None:
        if self.bytes_up is None or self.bytes_down is None:
            return None
        return self.bytes_up + self.bytes_down


def summarise(
    setting: str, method: str, seed: int, res: FederationResult, federated: bool
) -> RunSummary:
    last = res.rounds[-1]
    rounds = res.rounds

    def mean(key: str) -> float | None:
        return float(np.mean([r[key] for r in rounds])) if federated else None

    def extra(key: str) -> float | None:
        return float(np.mean([r["extra"][key] for r in rounds])) if federated else None

    return RunSummary(
        setting=setting,
        method=method,
        seed=seed,
        accuracy=float(last["test"]["accuracy"]),
        leakage=extra("leakage"),
        bytes_up=mean("bytes_up"),
        bytes_down=mean("bytes_down"),
        sim_s=mean("sim_time_s"),
        sparsity=extra("sparsity"),
        wall_s=res.wall_s,
    )


@dataclass
class PaperResult:
    runs: list[RunSummary] = field(default_factory=list)
    frontier: list[RunSummary] = field(default_factory=list)
    wall_s: float = 0.0


Report = Callable[[str], None]


def _execute(
    p: PaperPlan,
    jobs: list[tuple[Setting, str, dict[str, Any], int]],
    advance: Report,
    measure_inversion: bool = False,
) -> list[RunSummary]:
    out: list[RunSummary] = []
    prepared: dict[tuple[Setting, int], tuple[PreparedFederation, list[str]]] = {}
    for s, method, algorithm, seed in jobs:
        key = (s, seed)
        if key not in prepared:
            probe = run_config(p, s, {"name": "fedavg"}, seed, [])
            prep = PreparedFederation.build(probe)
            prepared = {key: (prep, prep.fed.site_names)}  # keep one federation in memory
        prep, names = prepared[key]
        cfg = run_config(p, s, algorithm, seed, names)
        res = run_federation(cfg, prepared=prep)
        summary = summarise(s.label, method, seed, res, algorithm["name"] != "pooled")
        if algorithm["name"] == "ccpgd":
            summary.lam = float(getattr(cfg.algorithm, "lam", math.nan))
            summary.mu = float(getattr(cfg.algorithm, "mu", math.nan))
        if measure_inversion and p.inversion_iterations > 0 and seed == p.seeds[0]:
            from medsilo.audit.inversion_audit import benchmark_inversion_psnr

            summary.inversion_psnr = benchmark_inversion_psnr(cfg, prep, p.inversion_iterations)
        out.append(summary)
        advance(f"{s.label} {method} seed {seed}: acc {summary.accuracy:.3f}")
    return out


def run_paper_benchmark(
    quick: bool,
    out_dir: Path,
    console: Console,
    progress: bool = True,
    custom_plan: PaperPlan | None = None,
    empirical: bool = True,
) -> PaperResult:
    """``empirical=False`` skips the gradient-inversion column (``inversion_iterations=0``)."""
    p = custom_plan or plan(quick)
    if not empirical:
        p = replace(p, inversion_iterations=0)
    out_dir.mkdir(parents=True, exist_ok=True)
    table_jobs = [
        (s, m, algo, seed) for s in p.settings for seed in p.seeds for m, algo in p.methods.items()
    ]
    frontier_jobs = [
        (
            p.frontier_setting,
            f"ccpgd lam={lam:g} mu={mu:g}",
            {"name": "ccpgd", "lam": lam, "mu": mu},
            seed,
        )
        for seed in p.seeds[:1]
        for lam in p.lam_grid
        for mu in p.mu_grid
    ]
    start = time.perf_counter()
    result = PaperResult()
    # one intra-op thread, like run_experiment (cfg.threads): small models on a shared CPU run
    # many times slower with more
    with intra_op_threads(1):
        _run_all(p, table_jobs, frontier_jobs, result, progress)
    result.wall_s = time.perf_counter() - start
    write_outputs(p, result, out_dir, console)
    return result


def _run_all(
    p: PaperPlan,
    table_jobs: list[tuple[Setting, str, dict[str, Any], int]],
    frontier_jobs: list[tuple[Setting, str, dict[str, Any], int]],
    result: PaperResult,
    progress: bool,
) -> None:
    with progress_bars(progress) as bars:
        t_table = bars.add_task("paper table", total=len(table_jobs), status="")
        t_front = bars.add_task("(lam, mu) frontier", total=len(frontier_jobs), status="")

        def step(task: Any) -> Report:
            def report(msg: str) -> None:
                bars.update(task, advance=1, status=msg)

            return report

        result.runs = _execute(p, table_jobs, step(t_table), measure_inversion=True)
        result.frontier = _execute(p, frontier_jobs, step(t_front))


# --- table ----------------------------------------------------------------------------------


def _pct(new: float | None, base: float | None) -> float | None:
    if new is None or base is None or base == 0:
        return None
    return 100.0 * (new - base) / base


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def table_rows(result: PaperResult) -> list[dict[str, Any]]:
    """One row per (setting, method), averaged over seeds, with same-seed CC-PGD deltas."""
    by_key: dict[tuple[str, str, int], RunSummary] = {
        (r.setting, r.method, r.seed): r for r in result.runs
    }
    settings = list(dict.fromkeys(r.setting for r in result.runs))
    methods = list(dict.fromkeys(r.method for r in result.runs))
    rows: list[dict[str, Any]] = []
    for s in settings:
        for m in methods:
            runs = [r for r in result.runs if r.setting == s and r.method == m]
            if not runs:
                continue
            row: dict[str, Any] = {
                "setting": s,
                "method": m,
                "seeds": len(runs),
                "accuracy": _mean([r.accuracy for r in runs]),
                "leakage_risk": _mean([r.leakage for r in runs]),
                "empirical_leakage": _empirical(runs, m),
                "bytes_up_per_round": _mean([r.bytes_up for r in runs]),
                "bytes_down_per_round": _mean([r.bytes_down for r in runs]),
                "bytes_total_per_round": _mean([r.bytes_total for r in runs]),
                "sim_s_per_round": _mean([r.sim_s for r in runs]),
                "update_sparsity": _mean([r.sparsity for r in runs]),
                "leakage_vs_fedavg_pct": None,
                "bytes_up_vs_fedavg_pct": None,
                "bytes_total_vs_fedavg_pct": None,
                "gap_to_pooled_pts": None,
            }
            if m.startswith("ccpgd"):
                pairs = [(r, by_key.get((s, "fedavg", r.seed))) for r in runs]
                pooled = [by_key.get((s, "pooled", r.seed)) for r in runs]
                row["leakage_vs_fedavg_pct"] = _mean(
                    [_pct(r.leakage, f.leakage if f else None) for r, f in pairs]
                )
                row["bytes_up_vs_fedavg_pct"] = _mean(
                    [_pct(r.bytes_up, f.bytes_up if f else None) for r, f in pairs]
                )
                row["bytes_total_vs_fedavg_pct"] = _mean(
                    [_pct(r.bytes_total, f.bytes_total if f else None) for r, f in pairs]
                )
                row["gap_to_pooled_pts"] = _mean(
                    [
                        100.0 * (q.accuracy - r.accuracy) if q else None
                        for r, q in zip(runs, pooled, strict=True)
                    ]
                )
            rows.append(row)
    return rows


def _empirical(runs: list[RunSummary], method: str) -> float | str:
    """Mean inversion PSNR over the seeds that measured it, else why it is missing."""
    measured = [r.inversion_psnr for r in runs if r.inversion_psnr is not None]
    if measured:
        return float(np.mean(measured))
    if method == "pooled":
        return EMPIRICAL_NO_UPDATES
    return EMPIRICAL_NA


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if kind == "pct":
        return f"{value:+.1f}%"
    if kind == "pts":
        return f"{value:+.2f}"
    if kind == "bytes":
        return f"{value / 1000:.1f} kB"
    if kind == "s":
        return f"{value:.3f}"
    if kind == "db":
        return f"{value:.1f} dB"
    return f"{value:.4f}" if kind == "risk" else f"{value:.3f}"


COLUMNS: list[tuple[str, str, str]] = [
    ("setting", "setting", "str"),
    ("method", "method", "str"),
    ("accuracy", "accuracy", "acc"),
    ("leakage_risk", "leakage risk R", "risk"),
    ("empirical_leakage", "inversion PSNR", "db"),
    ("bytes_up_per_round", "bytes up/round", "bytes"),
    ("bytes_total_per_round", "bytes up+down/round", "bytes"),
    ("sim_s_per_round", "sim s/round", "s"),
    ("leakage_vs_fedavg_pct", "leak vs FedAvg", "pct"),
    ("bytes_up_vs_fedavg_pct", "bytes up vs FedAvg", "pct"),
    ("bytes_total_vs_fedavg_pct", "bytes total vs FedAvg", "pct"),
    ("gap_to_pooled_pts", "gap to pooled (pts)", "pts"),
]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| " + " | ".join(c[1] for c in COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r[k], kind) for k, _, kind in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def print_table(rows: list[dict[str, Any]], console: Console, title: str) -> None:
    table = Table(title=title)
    for _, header, kind in COLUMNS:
        table.add_column(header, justify="left" if kind == "str" else "right")
    for r in rows:
        table.add_row(*[_fmt(r[k], kind) for k, _, kind in COLUMNS])
    console.print(table)


# --- frontier -------------------------------------------------------------------------------


def _non_increasing(seq: list[float | None]) -> bool:
    vals = [v for v in seq if v is not None]
    return all(b <= a for a, b in itertools.pairwise(vals))


def monotonicity(frontier: list[RunSummary]) -> dict[str, Any]:
    """Does more lam give less leakage (each mu), and more mu fewer bytes (each lam)?"""
    lams = sorted({r.lam for r in frontier if r.lam is not None})
    mus = sorted({r.mu for r in frontier if r.mu is not None})
    at = {(r.lam, r.mu): r for r in frontier}
    lam_checks, mu_checks = [], []
    for mu in mus:
        lam_checks.append(
            _non_increasing([at[(lam, mu)].leakage for lam in lams if (lam, mu) in at])
        )
    for lam in lams:
        mu_checks.append(_non_increasing([at[(lam, mu)].bytes_up for mu in mus if (lam, mu) in at]))
    return {
        "more_lambda_less_leakage": all(lam_checks),
        "lambda_checks_held": f"{sum(lam_checks)}/{len(lam_checks)}",
        "more_mu_fewer_bytes": all(mu_checks),
        "mu_checks_held": f"{sum(mu_checks)}/{len(mu_checks)}",
    }


def frontier_plot(frontier: list[RunSummary], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lams = sorted({r.lam for r in frontier if r.lam is not None})
    mus = sorted({r.mu for r in frontier if r.mu is not None})
    at = {(r.lam, r.mu): r for r in frontier}
    fig, axes = plt.subplots(1, 3, figsize=(17, 5))
    ax = axes[0]
    sc = ax.scatter(
        [r.leakage for r in frontier],
        [(r.bytes_up or 0) / 1000 for r in frontier],
        c=[r.accuracy for r in frontier],
        cmap="viridis",
        s=60,
    )
    for r in frontier:
        ax.annotate(
            f"λ={r.lam:g}\nμ={r.mu:g}", ((r.leakage or 0), (r.bytes_up or 0) / 1000), fontsize=6
        )
    fig.colorbar(sc, ax=ax, label="test accuracy")
    ax.set_xlabel("leakage risk R of transmitted updates")
    ax.set_ylabel("uplink kB per round")
    ax.set_title("frontier (colour: accuracy)")
    for mu in mus:
        pts = [(lam, at[(lam, mu)].leakage) for lam in lams if (lam, mu) in at]
        axes[1].plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=f"μ={mu:g}")
    axes[1].set_xscale("symlog", linthresh=min([x for x in lams if x > 0] or [1e-3]))
    axes[1].set_xlabel("λ (privacy knob)")
    axes[1].set_ylabel("leakage risk R")
    axes[1].set_title("more λ ⇒ less leakage?")
    axes[1].legend(fontsize=7)
    for lam in lams:
        pts = [(mu, (at[(lam, mu)].bytes_up or 0) / 1000) for mu in mus if (lam, mu) in at]
        axes[2].plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=f"λ={lam:g}")
    axes[2].set_xlabel("μ (communication knob)")
    axes[2].set_ylabel("uplink kB per round")
    axes[2].set_title("more μ ⇒ fewer bytes?")
    axes[2].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- outputs --------------------------------------------------------------------------------


def write_outputs(p: PaperPlan, result: PaperResult, out_dir: Path, console: Console) -> None:
    rows = table_rows(result)
    with (out_dir / "paper_table.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
    (out_dir / "paper_table.md").write_text(markdown_table(rows))
    fields = [*asdict(result.frontier[0]).keys()] if result.frontier else []
    with (out_dir / "frontier.csv").open("w", newline="") as f:
        fw = csv.DictWriter(f, fieldnames=fields)
        fw.writeheader()
        fw.writerows(asdict(r) for r in result.frontier)
    mono = monotonicity(result.frontier)
    if result.frontier:
        frontier_plot(
            result.frontier,
            out_dir / "frontier.png",
            f"CC-PGD (λ, μ) grid on {p.frontier_setting.label} ({p.frontier_setting.model})",
        )
    summary = {
        "plan": {
            **{k: v for k, v in asdict(p).items() if k not in ("settings", "frontier_setting")},
            "settings": [asdict(s) for s in p.settings],
            "frontier_setting": asdict(p.frontier_setting),
            "network": {"default": FAST, "last_site": RURAL},
            "platforms": {"default": SAFE_PLATFORM, "second_site": EXPOSED_PLATFORM},
        },
        "monotonicity": mono,
        "wall_s": result.wall_s,
        "runs": [asdict(r) for r in result.runs],
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print_table(rows, console, "CC-PGD vs baselines (same seeds)")
    console.print(
        f"more λ ⇒ less leakage: [bold]{'held' if mono['more_lambda_less_leakage'] else 'NOT held'}"
        f"[/] ({mono['lambda_checks_held']} μ-columns monotone);  more μ ⇒ fewer bytes: "
        f"[bold]{'held' if mono['more_mu_fewer_bytes'] else 'NOT held'}[/] "
        f"({mono['mu_checks_held']} λ-rows monotone)"
    )
    console.print(f"wrote {out_dir}/paper_table.md, frontier.png  ({result.wall_s:.0f} s)")
