"""``medsilo bench secagg --quick``: the tables print and the measured sums are exact,
including SecAgg+ beside the complete graph."""

from __future__ import annotations

from rich.console import Console
from typer.testing import CliRunner

from medsilo.bench.secagg import QUICK, run_secagg_benchmark
from medsilo.cli import app


def test_quick_benchmark_measures_both_mechanisms() -> None:
    out = run_secagg_benchmark(QUICK, console=Console(width=250))
    m, c = out["masking"], out["ckks"]
    assert m["dropped"] == 1 and m["threshold"] == 6
    assert len(m["site_phase_s"]["mask"]) == 9 and len(m["site_phase_s"]["keys"]) == 10
    assert 0 < m["max_error"] <= m["error_bound"]
    # The masked vector is as big as the float32 update; the protocol adds the rest.
    assert m["masked_bytes"] >= 4 * QUICK.params and m["bytes_per_site"] > m["masked_bytes"]
    assert c["max_error"] < 1e-5 and c["bytes_per_site"] > m["bytes_per_site"]
    assert out["ckks_scaled"]["sum_s"] > c["sum_s"]  # 10 sites x 3 chunks vs 3 x 2
    rows = {(r["sites"], r["graph"].split()[0]): r for r in out["graphs"]}
    assert set(rows) == {(10, "complete"), (10, "SecAgg+"), (30, "complete"), (30, "SecAgg+")}
    for (n, graph), r in rows.items():
        if r["extrapolated_from"] is None:  # measured: the sum is exact within fixed point
            assert 0 < r["max_error"] <= r["error_bound"]
        if graph == "SecAgg+":
            assert r["neighbours"] < n - 1 and r["extrapolated_from"] is None
    assert rows[(30, "complete")]["extrapolated_from"] == 10  # above complete_max_sites
    # Bytes a site sends grow with its peers: 29 on the complete graph, k = 14 on SecAgg+.
    assert rows[(30, "complete")]["bytes_per_site"] > rows[(30, "SecAgg+")]["bytes_per_site"]


def test_cli_runs_and_refuses_bad_sizes() -> None:
    ok = CliRunner().invoke(app, ["bench", "secagg", "--quick", "--no-progress"])
    assert ok.exit_code == 0, ok.output
    assert "coordinator unmasking" in ok.output and "CKKS" in ok.output
    assert "SecAgg+ vs complete graph" in ok.output
    bad = CliRunner().invoke(app, ["bench", "secagg", "--quick", "--sites", "1", "--no-progress"])
    assert bad.exit_code == 2 and "at least 2 sites" in bad.output
    args = ["bench", "secagg", "--quick", "--dropout", "0.5", "--no-progress"]
    aborted = CliRunner().invoke(app, args)
    assert aborted.exit_code == 2 and "5 of 10 sites remain" in aborted.output
    sizes = ["bench", "secagg", "--quick", "--compare-sites", "10,ten", "--no-progress"]
    refused = CliRunner().invoke(app, sizes)
    assert refused.exit_code == 2 and "comma-separated site counts" in refused.output
    assert "Secure aggregation" not in refused.output  # refused before anything ran
