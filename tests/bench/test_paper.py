"""``medsilo bench paper`` on a tiny plan: outputs, same-seed deltas, monotonicity check."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from medsilo.bench.paper import (
    EMPIRICAL_NO_UPDATES,
    RunSummary,
    Setting,
    monotonicity,
    plan,
    run_paper_benchmark,
)
from medsilo.bench.paper_leakage import LeakageSettings
from medsilo.bench.paper_plan import second_plan
from medsilo.bench.paper_report import write_second_outputs
from medsilo.bench.paper_rules import INCONCLUSIVE
from medsilo.bench.paper_second import run_second_pass
from medsilo.cli import app


def test_tiny_paper_benchmark_writes_table_and_frontier(tmp_path: Path) -> None:
    heart = Setting("heart_disease", "natural", "logistic")
    tiny = dataclasses.replace(
        plan(quick=True),
        settings=(heart,),
        seeds=(0,),
        rounds=2,
        local_steps=3,
        lam_grid=(0.0, 0.1),
        mu_grid=(0.0, 0.05),
        frontier_setting=heart,
        inversion_iterations=20,
    )
    result = run_paper_benchmark(
        quick=True, out_dir=tmp_path, console=Console(width=250), progress=False, custom_plan=tiny
    )
    assert len(result.runs) == len(tiny.methods) and len(result.frontier) == 4
    for name in ("paper_table.csv", "paper_table.md", "frontier.csv", "frontier.png"):
        assert (tmp_path / name).stat().st_size > 0
    rows = list(csv.DictReader((tmp_path / "paper_table.csv").open()))
    by_method = {r["method"]: r for r in rows}
    assert by_method["ccpgd"]["leakage_vs_fedavg_pct"] != ""
    # gradient-inversion PSNR (dB) of single-row updates: measured for every federated method
    assert float(by_method["fedavg"]["empirical_leakage"]) > 0
    assert float(by_method["ccpgd"]["empirical_leakage"]) > 0
    assert by_method["pooled"]["empirical_leakage"] == EMPIRICAL_NO_UPDATES
    assert by_method["pooled"]["bytes_up_per_round"] == ""  # no wire traffic
    assert float(by_method["fedavg"]["sim_s_per_round"]) > 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["monotonicity"]) >= {"more_lambda_less_leakage", "more_mu_fewer_bytes"}


def _run(lam: float, mu: float, leak: float, up: float) -> RunSummary:
    return RunSummary("s", "ccpgd", 0, 0.9, leak, up, 1.0, 0.1, 0.0, 0.0, lam, mu)


def test_monotonicity_check() -> None:
    good = [_run(0, 0, 0.3, 100), _run(1, 0, 0.1, 100), _run(0, 1, 0.4, 50), _run(1, 1, 0.2, 40)]
    assert monotonicity(good)["more_lambda_less_leakage"]
    assert monotonicity(good)["more_mu_fewer_bytes"]
    bad = [*good[:3], _run(1, 1, 0.5, 120)]
    m = monotonicity(bad)
    assert not m["more_lambda_less_leakage"] and not m["more_mu_fewer_bytes"]
    assert m["lambda_checks_held"] == "1/2"


def test_cli_registers_bench_paper() -> None:
    res = CliRunner().invoke(app, ["bench", "paper", "--help"])
    assert res.exit_code == 0 and "--quick" in res.output


@pytest.mark.slow
def test_tiny_second_pass_writes_verdicts_dominance_and_frontier(tmp_path: Path) -> None:
    """The second pass end to end on heart disease (no attacks: ``leakage=None``): the
    operating point is chosen, DP-FL spends at most its stated epsilon, CC-PGD records its
    projected_share, and every output of docs/ccpgd.md §10 is written."""
    heart = Setting("heart_disease", "natural", "logistic")
    tiny = dataclasses.replace(
        second_plan("quick"),
        settings=(heart,),
        tuning_setting=heart,
        grid_settings=(heart,),
        rounds=3,
        local_steps=3,
        grid=((0.0, 0.0), (0.3, 0.04)),
        rhos=(0.01, 5.0),
        kappas=(1.0,),
        dp_epsilons=(4.0,),
        leakage=None,
        workers=1,
    )
    result = run_second_pass(tiny, progress=False, log=tmp_path / "runs.jsonl")
    summary = write_second_outputs(result, tmp_path, Console(width=250))
    for name in ("table.md", "verdicts.md", "dominance.csv", "frontier.png", "summary.json"):
        assert (tmp_path / f"paper2_{name}").stat().st_size > 0
    logged = (tmp_path / "runs.jsonl").read_text().splitlines()
    assert len(logged) == len(result.outcomes)
    by_label = {(o.label, o.codec): o for o in result.outcomes}
    dp = by_label[("dp_fl eps=4", "none")]
    assert dp.epsilon is not None and dp.epsilon <= 4.0 and dp.noise_multiplier > 1.0
    assert by_label[("fedavg", "int8")].projected_share is None
    lam, mu = result.points["none"]
    tight = by_label[(f"ccpgd lam={lam:g} mu={mu:g} rho=0.01", "none")]
    assert tight.projected_share is not None and tight.projected_share > 0
    assert by_label[("ccpgd lam=0 mu=0", "none")].projected_share == 0.0
    verdicts = {v["codec"]: v for v in summary["verdicts"]}
    assert set(verdicts) == {"none", "int8"}
    # one seed: no interval, so every claim is inconclusive, never "holds"
    assert verdicts["none"]["communication_verdict"] == INCONCLUSIVE
    assert {d["family"] for d in summary["dominance"]} == {"fedavg", "dp_fl", "fedprox"}


def test_quick_is_a_smaller_plan_and_standard_keeps_the_pre_registered_one() -> None:
    """--quick was cut to fit 10 minutes on 2 cores; --standard and --full must still be
    §10's plan (3 seeds, the full grid with every codec, every ablation, the full attacks)."""
    quick, standard, full = (second_plan(m) for m in ("quick", "standard", "full"))
    assert set(quick.grid) < set(standard.grid) and len(standard.grid) == 25
    assert quick.max_train_samples is not None and standard.max_train_samples is not None
    assert quick.max_train_samples < standard.max_train_samples
    assert quick.rounds < standard.rounds < full.rounds
    for p in (standard, full):
        assert p.seeds == (0, 1, 2) and p.tuning_seed == 100
        assert p.grid_codecs == ("none", "fp16", "int8", "qsgd")
        assert (p.rhos, p.kappas) == ((1.0, 2.0, 5.0, 10.0), (0.0, 1.0, 3.0))
        assert p.dp_epsilons == (1.0, 4.0, 8.0) and p.fedprox_mus == (0.001, 0.01, 0.1)
        assert p.leakage == LeakageSettings()
    assert quick.leakage is not None and quick.leakage.inversion_iterations < 300
    assert any("smoke-scale" in d for d in quick.deviations)
