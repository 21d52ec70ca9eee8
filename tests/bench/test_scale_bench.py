"""``medsilo bench scale``: its workload, its table and its input checks (no timings asserted)."""

from __future__ import annotations

import io

from rich.console import Console
from typer.testing import CliRunner

from medsilo.bench.scale import scale_table
from medsilo.bench.scale_worker import scale_config
from medsilo.cli import app
from medsilo.runtime.cohorts import cohort_size


def test_every_roster_size_samples_the_same_cohort() -> None:
    for sites in (10, 100, 1000, 10000):
        cfg = scale_config(sites, 10, rounds=5, local_steps=5, batch_size=4, evaluated="cohort")
        t = cfg.training
        assert cohort_size(sites, t.fraction, t.min_sites) == 10
        assert cfg.data.num_sites == sites and cfg.evaluation.sites == "cohort"


def test_table_shows_each_size_and_the_step_ratio() -> None:
    row = {
        "sites": 1000,
        "cohort": 10,
        "rounds": 5,
        "local_steps": 5,
        "batch_size": 4,
        "evaluated": "cohort",
        "first_round_s": 6.0,
        "round_s": 0.25,
        "end_s": 12.0,
        "peak_rss_mib": 1300.0,
        "baseline_rss_mib": 250.0,
        "step_ms": 5.0,
        "central_step_ms": 0.5,
    }
    buffer = io.StringIO()
    Console(file=buffer, width=250).print(scale_table([row]))
    text = buffer.getvalue()
    assert "1,000" in text and "1050" in text and "10.0" in text  # sites, MiB above imports, ratio
    assert "evaluation.sites cohort" in text


def test_sizes_smaller_than_the_cohort_are_refused_before_any_run() -> None:
    result = CliRunner().invoke(app, ["bench", "scale", "--sites", "5", "--cohort", "10"])
    assert result.exit_code == 2
    assert "must hold the cohort" in result.output
    result = CliRunner().invoke(app, ["bench", "scale", "--evaluate-sites", "some"])
    assert result.exit_code == 2
