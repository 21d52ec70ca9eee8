"""``medsilo bench robustness`` on a tiny budget: tables written, byte ratios, scenario keys."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from medsilo.bench.robustness import QUICK, SCENARIOS, run_robustness_benchmark
from medsilo.cli import app


def test_tiny_benchmark_writes_its_tables(tmp_path: Path) -> None:
    rows = run_robustness_benchmark(
        budget=QUICK,
        out_dir=tmp_path,
        console=Console(width=250),
        only=["flip_trim", "fp16", "topk_ef", "gauss"],
    )
    by_key = {r.key: r for r in rows}
    assert list(by_key) == ["clean", "flip_trim", "gauss", "fp16", "topk_ef"]
    assert by_key["clean"].delta_points == 0 and by_key["clean"].fp32_ratio == 1
    # fp16 halves dense bytes; plain FedAvg's wire already drops its exact zeros (bitmap)
    assert 1.0 < by_key["fp16"].fp32_ratio <= 2.0
    assert by_key["topk_ef"].fp32_ratio > 50
    assert by_key["gauss"].rejected == 2  # std-1 noise is far beyond 100x an honest norm
    with (tmp_path / "robustness.csv").open() as fh:
        assert [r["key"] for r in csv.DictReader(fh)] == list(by_key)
    saved = json.loads((tmp_path / "robustness.json").read_text())
    assert saved["attackers"] == ["site-00", "site-01"] and len(saved["runs"]) == 5
    assert "| FedAvg, no attack |" in (tmp_path / "robustness.md").read_text()


def test_scenario_keys_are_unique_and_checked(tmp_path: Path) -> None:
    assert len({s.key for s in SCENARIOS}) == len(SCENARIOS)
    with pytest.raises(ValueError, match=r"unknown scenario\(s\) \['nope'\]"):
        run_robustness_benchmark(budget=QUICK, out_dir=tmp_path, only=["nope"])


def test_cli_runs_the_benchmark(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["bench", "robustness", "--quick", "--only", "int8", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "int8" in result.output and (tmp_path / "robustness.md").is_file()
    bad = CliRunner().invoke(app, ["bench", "robustness", "--quick", "--only", "nope"])
    assert bad.exit_code == 2
