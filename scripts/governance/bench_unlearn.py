"""Measure checkpointing and exact unlearning side by side on Fed-Heart-Disease (4 sites).

Usage: OMP_NUM_THREADS=1 python scripts/governance/bench_unlearn.py [--rounds 50]

Prints, in one run: training wall time with and without per-round checkpoints, the disk the
checkpoints take, the wall time of ``unlearn`` for the site that joined last versus a
from-scratch run without it, and whether the two final models are bit-identical.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from medsilo.config import RunConfig, parse_config
from medsilo.experiment import run_experiment
from medsilo.governance.unlearn import Withdrawal, read_rounds, unlearn


def config(rounds: int, out: Path, **governance: object) -> RunConfig:
    return parse_config(
        {
            "name": "heart",
            "data": {"dataset": "heart_disease", "partition": "natural"},
            "model": {"name": "logistic"},
            "training": {
                "rounds": rounds,
                "local_steps": 10,
                "batch_size": 8,
                "lr": 0.1,
                "fraction": 0.25,
            },
            "governance": governance,
            "output_dir": str(out),
        }
    )


def timed(cfg: RunConfig, run_dir: Path) -> float:
    t0 = time.perf_counter()
    run_experiment(cfg, run_dir)
    return time.perf_counter() - t0


def weights(run_dir: Path) -> list[np.ndarray]:
    with np.load(run_dir / "final_weights.npz") as npz:
        return [npz[k] for k in npz.files]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        timed(config(args.rounds, out), out / "warmup")  # data loading, imports
        plain = timed(config(args.rounds, out), out / "plain")
        ckpt_cfg = config(args.rounds, out, checkpoint={"every": 1})
        with_ckpt = timed(ckpt_cfg, out / "run")
        disk = sum(p.stat().st_size for p in (out / "run" / "checkpoints").iterdir())
        first: dict[str, int] = {}
        for rec in read_rounds(out / "run"):
            for site in rec["sites"]:
                first.setdefault(site, rec["round"])
        site = max(first, key=lambda s: first[s])
        t0 = time.perf_counter()
        outcome = unlearn(out / "run", Withdrawal(site))
        unlearn_s = time.perf_counter() - t0
        scratch_cfg = config(args.rounds, out, checkpoint={"every": 1}, withdrawn_sites=[site])
        scratch_s = timed(scratch_cfg, out / "scratch")
        assert outcome.new_run is not None
        same = all(
            np.array_equal(a, b)
            for a, b in zip(weights(outcome.new_run), weights(out / "scratch"), strict=True)
        )
    print(f"rounds: {args.rounds}, 4 sites, 1 sampled a round, logistic model")
    print(
        f"train without checkpoints: {plain:.2f} s; with: {with_ckpt:.2f} s "
        f"(x{with_ckpt / plain:.2f}); checkpoints on disk: {disk / 1024:.0f} KiB"
    )
    print(
        f"unlearn {site!r} (first contributed in round {first[site]}, resumed after round "
        f"{outcome.resumed_after}): {unlearn_s:.2f} s vs from scratch {scratch_s:.2f} s "
        f"(x{unlearn_s / scratch_s:.2f}); bit-identical final weights: {same}"
    )


if __name__ == "__main__":
    main()
