"""``medsilo bench paper`` on a tiny plan: outputs, same-seed deltas, monotonicity check."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

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
