"""Measure exact unlearning of one patient against retraining from scratch (Fed-Heart-Disease).

Usage: OMP_NUM_THREADS=1 python scripts/governance/bench_patient_unlearn.py [--rounds 50]

Every training row of the four hospitals is a consenting patient from before round 1, except
one Cleveland patient who joins at round ``--joins`` (default 70% of the rounds). After
training both that patient and one who consented from the start revoke; each is unlearned
from its own copy of the run (a run is retired after one unlearning) and compared, in wall
seconds and bit for bit, with a from-scratch run of the same config whose register lacks
the patient.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from bench_unlearn import config, weights  # this folder; the same run as the site benchmark

from medsilo.config import RunConfig
from medsilo.data.registry import build_federation
from medsilo.experiment import run_experiment
from medsilo.governance.patient_register import (
    ConsentEntry,
    create_site_key,
    load_site_key,
    row_pseudonym,
    write_register,
)
from medsilo.governance.patient_unlearn import unlearn_patient
from medsilo.governance.unlearn import UnlearnOutcome

START = datetime(2026, 11, 1, tzinfo=UTC)
SITE = "cleveland"


Seconds = tuple[float, float]  # (wall, CPU of this process): CPU is steadier on a shared host


def clock() -> Seconds:
    return time.perf_counter(), time.process_time()


def since(t0: Seconds) -> Seconds:
    wall, cpu = clock()
    return wall - t0[0], cpu - t0[1]


def timed_run(cfg: RunConfig, run_dir: Path) -> Seconds:
    t0 = clock()
    run_experiment(cfg, run_dir)
    return since(t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--joins", type=int, default=None, help="the late patient's round")
    args = parser.parse_args()
    rounds: int = args.rounds
    joins: int = args.joins or max(2, int(0.7 * rounds))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        fed = build_federation(config(rounds, out).data, 0)
        registers: dict[str, dict[str, ConsentEntry]] = {}
        sites: dict[str, dict[str, str]] = {}
        for site in fed.sites:
            key_file = create_site_key(out / "sites" / f"{site.name}.key")
            key = load_site_key(key_file)
            ids = [row_pseudonym(key, site.name, i) for i in range(len(site.train))]
            registers[site.name] = {p: ConsentEntry(START - timedelta(days=1), None) for p in ids}
            sites[site.name] = {
                "register_file": str(out / "sites" / f"{site.name}.csv"),
                "key_file": str(key_file),
            }
        key = load_site_key(Path(sites[SITE]["key_file"]))
        early, late = row_pseudonym(key, SITE, 0), row_pseudonym(key, SITE, 1)
        joined = START + timedelta(hours=24 * (joins - 1) - 1)
        registers[SITE][late] = ConsentEntry(joined, None)

        def write() -> None:
            for name, entries in registers.items():
                write_register(Path(sites[name]["register_file"]), entries)

        write()
        consent = {"start": START.isoformat(), "round_hours": 24, "sites": sites}
        cfg = config(rounds, out, checkpoint={"every": 1}, patient_consent=consent)
        timed_run(cfg, out / "warmup")  # data loading, imports
        train_s = timed_run(cfg, out / "run-late")
        timed_run(cfg, out / "run-early")
        after = START + timedelta(days=rounds + 1)  # both revoke after training
        for patient in (early, late):
            registers[SITE][patient] = ConsentEntry(registers[SITE][patient].granted, after)
        write()
        results: list[tuple[str, UnlearnOutcome, Seconds, Seconds, bool]] = []
        for name, patient, run in (("late", late, "run-late"), ("early", early, "run-early")):
            t0 = clock()
            outcome = unlearn_patient(out / run, SITE, patient, out / f"{run}-unlearned")
            unlearn_s = since(t0)
            kept = registers[SITE].pop(patient)
            write()
            scratch_s = timed_run(cfg, out / f"scratch-{name}")
            registers[SITE][patient] = kept
            write()
            assert outcome.new_run is not None
            same = all(
                np.array_equal(a, b)
                for a, b in zip(
                    weights(outcome.new_run), weights(out / f"scratch-{name}"), strict=True
                )
            )
            results.append((name, outcome, unlearn_s, scratch_s, same))
    print(f"rounds: {rounds}, 4 sites, 1 sampled a round, logistic model, 10 local steps")
    print(f"training with per-round checkpoints: {train_s[0]:.2f} s wall, {train_s[1]:.2f} s CPU")
    for name, outcome, unlearn_s, scratch_s, same in results:
        replayed = rounds - outcome.resumed_after
        print(
            f"{name} patient: first trained in round {outcome.first_round}, resumed after "
            f"round {outcome.resumed_after} ({replayed} rounds replayed): unlearn "
            f"{unlearn_s[0]:.2f} s wall / {unlearn_s[1]:.2f} s CPU vs from scratch "
            f"{scratch_s[0]:.2f} s / {scratch_s[1]:.2f} s; bit-identical: {same}"
        )


if __name__ == "__main__":
    main()
