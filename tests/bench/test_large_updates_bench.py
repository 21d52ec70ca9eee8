"""``medsilo bench large``: sizes parse, and a small in-process run reports every variant."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from medsilo.bench.large_updates import parse_params, run_large_updates_benchmark
from medsilo.cli import app


def test_sizes_parse_with_suffixes() -> None:
    assert parse_params("25M") == 25_000_000
    assert parse_params("1.5m") == 1_500_000
    assert parse_params("100_000") == 100_000
    for bad in ("lots", "10", "M"):
        with pytest.raises(ValueError, match="--params"):
            parse_params(bad)


def test_a_bad_size_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["bench", "large", "--params", "lots", "--no-deployed"])
    assert result.exit_code == 2
    assert "--params" in result.output


def test_an_in_process_run_reports_each_variant(tmp_path: Path) -> None:
    rows = run_large_updates_benchmark([40_000], 3, False, 1, tmp_path, Console(quiet=True))
    assert [r.mode for r in rows] == ["secagg", "secagg-harary", "topk-ef"]
    for row in rows:
        assert row.note.startswith("peaks"), row.note  # the worker ran and reported
        assert row.site_peak_bytes and row.coordinator_peak_bytes
        assert row.site_peak_bytes > row.model_bytes  # a site holds at least its delta
    assert (tmp_path / "large-updates.json").exists()
