"""``medsilo bench async`` on a tiny budget: time to accuracy, tables and plot written."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from medsilo.bench.asynchronous import (
    QUICK,
    SLOW_SITES,
    mode_config,
    run_async_benchmark,
    time_to_accuracy,
)


def test_time_to_accuracy_is_the_clock_of_the_first_evaluation_at_target() -> None:
    records = [
        {"sim_clock_s": 5.0, "test": {"accuracy": 0.5}},
        {"sim_clock_s": 9.0},  # not evaluated
        {"sim_clock_s": 12.0, "test": {"accuracy": 0.9}},
        {"sim_clock_s": 20.0, "test": {"accuracy": 0.95}},
    ]
    assert time_to_accuracy(records, 0.9) == 12.0
    assert time_to_accuracy(records, 0.5) == 5.0
    assert time_to_accuracy(records, 0.99) is None


def test_modes_share_everything_but_the_asynchrony() -> None:
    sync, buff = mode_config(QUICK, "sync", 3), mode_config(QUICK, "fedbuff", 3)
    assert sync.model_dump(exclude={"asynchrony", "name"}) == buff.model_dump(
        exclude={"asynchrony", "name"}
    )
    assert buff.asynchrony.mode == "fedbuff" and buff.seed == 3
    slow = sync.sites.record(SLOW_SITES[0]).compute
    assert slow.slowdown == QUICK.slowdown and slow.examples_per_s == QUICK.examples_per_s
    assert sync.sites.record("site-05").compute.slowdown == 1.0


@pytest.mark.slow
def test_tiny_benchmark_writes_its_tables(tmp_path: Path) -> None:
    budget = replace(QUICK, target=0.05)  # any trained model clears 5%
    modes = ("sync", "sync_timeout", "fedbuff")
    runs = run_async_benchmark(
        out_dir=tmp_path, console=Console(width=250), modes=modes, budget=budget
    )
    assert [r.mode for r in runs] == list(modes)
    for r in runs:
        assert r.time_to_target_s is not None and r.time_to_target_s > 0
        assert r.updates_to_target is not None and r.updates_to_target >= 1
        assert r.slow_site_accuracy is not None and r.fast_site_accuracy is not None
    with (tmp_path / "async.csv").open() as fh:
        assert [row["mode"] for row in csv.DictReader(fh)] == list(modes)
    saved = json.loads((tmp_path / "async.json").read_text())
    assert saved["budget"]["target"] == 0.05 and len(saved["runs"]) == 3
    assert "| FedBuff |" in (tmp_path / "async.md").read_text()
    assert (tmp_path / "async.png").stat().st_size > 0
    with pytest.raises(ValueError, match="unknown mode"):
        run_async_benchmark(out_dir=tmp_path, modes=("nope",), budget=budget)


@pytest.mark.slow
def test_cli_bench_async_quick(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from medsilo.cli import app

    args = ["bench", "async", "--quick", "--modes", "sync,fedasync", "--target", "0.05"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Time to accuracy" in result.output and (tmp_path / "async.md").is_file()
    bad = CliRunner().invoke(app, ["bench", "async", "--quick", "--modes", "nope"])
    assert bad.exit_code == 2 and "unknown mode" in bad.output
