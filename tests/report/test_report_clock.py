"""Reports put accuracy against the simulated clock (``sim_clock_s``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from medsilo.report import build_report, load_run, load_table

RunWriter = Callable[..., Path]


def test_clock_is_the_running_sum_of_round_times_in_older_runs(make_run: RunWriter) -> None:
    run = load_run(make_run(sim_time=True))  # round r lasted 10 r simulated seconds
    clocks = [r.sim_clock_s for r in run.rounds]
    assert clocks == pytest.approx([10.0, 30.0, 60.0, 100.0, 150.0, 210.0])
    assert run.sim_clock_s == pytest.approx(210.0)
    assert load_table(run.path).rows[0]["sim_clock_s"] == pytest.approx(210.0)
    no_clock = load_run(make_run("plain", sim_time=False))
    assert no_clock.sim_clock_s is None
    assert "sim_clock_s" not in load_table(no_clock.path).rows[0]


def test_a_written_clock_wins_over_the_running_sum(make_run: RunWriter, tmp_path: Path) -> None:
    run_dir = make_run(sim_time=True)
    rounds = run_dir / "rounds.jsonl"
    lines = [json.loads(x) for x in rounds.read_text().splitlines()]
    for i, rec in enumerate(lines):  # asynchronous aggregations: clock, not round, matters
        rec["sim_clock_s"] = 2.5 * (i + 1)
    rounds.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    run = load_run(run_dir)
    assert [r.sim_clock_s for r in run.rounds] == [2.5 * (i + 1) for i in range(6)]
    html = build_report(run_dir, tmp_path / "out")
    assert (html.parent / "accuracy_vs_time.png").is_file()
