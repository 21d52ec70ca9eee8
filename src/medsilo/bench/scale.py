"""``medsilo bench scale``: the in-process engine at 10 to 10,000 sites with a fixed cohort.

Every roster size runs MNIST split in shards (two classes per site), FedAvg with the MLP,
``cohort`` sites sampled per round, as ``medsilo simulate`` runs it (run directory, signed
ledger, the sites' witnessing), each size in a fresh process
(:mod:`medsilo.bench.scale_worker`, whose docstring says what is timed) so that its peak
resident memory (``ru_maxrss``) is its own. With a fixed cohort the work of a round is the
same at every size, so a per-round time or a memory peak that grows with the roster is
the engine's overhead, not the federation's work (docs/scale.md).

This is a benchmark to read, not a test: nothing here asserts a timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

DEFAULT_SIZES = (10, 100, 1000, 10000)


def measure_size(
    sites: int,
    cohort: int,
    rounds: int,
    local_steps: int,
    batch_size: int,
    evaluated: str,
) -> dict[str, Any]:
    """One roster size, measured in a child interpreter (see the module docstring)."""
    command = [sys.executable, "-m", "medsilo.bench.scale_worker"]
    for flag, value in (
        ("--sites", sites),
        ("--cohort", cohort),
        ("--rounds", rounds),
        ("--local-steps", local_steps),
        ("--batch-size", batch_size),
        ("--evaluate-sites", evaluated),
    ):
        command += [flag, str(value)]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{sites} sites: the measuring process failed:\n{done.stderr}")
    row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return row


def scale_table(rows: Sequence[dict[str, Any]]) -> Table:
    """The rows as the bench prints them (and docs/scale.md quotes them)."""
    first = rows[0]
    table = Table(
        title=(
            f"in-process engine, MNIST shards, MLP, cohort {first['cohort']} a round, "
            f"{first['local_steps']} local steps of batch {first['batch_size']}, "
            f"{first['rounds']} rounds, evaluation.sites {first['evaluated']}; peak memory is "
            "ru_maxrss of a fresh process per size"
        ),
        title_justify="left",
    )
    for column in (
        "sites",
        "setup + round 1 (s)",
        "per round (s)",
        "after last round (s)",
        "peak RSS (MiB)",
        "above imports (MiB)",
        "ms / step",
        "centralised ms / step",
        "ratio",
    ):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            f"{r['sites']:,}",
            f"{r['first_round_s']:.2f}",
            f"{r['round_s']:.3f}",
            f"{r['end_s']:.2f}",
            f"{r['peak_rss_mib']:.0f}",
            f"{r['peak_rss_mib'] - r['baseline_rss_mib']:.0f}",
            f"{r['step_ms']:.2f}",
            f"{r['central_step_ms']:.2f}",
            f"{r['step_ms'] / r['central_step_ms']:.1f}",
        )
    return table


def run_scale_benchmark(
    sizes: Sequence[int],
    cohort: int,
    rounds: int,
    local_steps: int,
    batch_size: int,
    evaluated: str,
    console: Console,
) -> list[dict[str, Any]]:
    """Measure each roster size in turn and print the table."""
    rows = []
    for sites in sizes:
        console.print(f"measuring {sites:,} sites ...")
        rows.append(measure_size(sites, cohort, rounds, local_steps, batch_size, evaluated))
    console.print(scale_table(rows))
    return rows
