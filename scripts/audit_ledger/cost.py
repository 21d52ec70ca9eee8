"""What the audit ledger costs (docs/audit-ledger.md): append, verify, model hash.

Appends ``--records`` signed ``round`` records (each committed with fsync) to a fresh
ledger, verifies it, hashes a 1M-parameter float32 model, and sets the per-round ledger
cost (one append + one model hash of the run's model) beside the mean round time of a small
heart-disease run made in the same process. Usage::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/audit_ledger/cost.py --records 1000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medsilo.config import parse_config
from medsilo.experiment import run_experiment
from medsilo.ledger.digest import weights_sha256
from medsilo.ledger.events import RoundEntry, RunStart, record_round, record_run_start
from medsilo.ledger.store import Ledger
from medsilo.ledger.verify import verify_ledger

SITES = ["cleveland", "hungarian", "switzerland", "va"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the heart run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("MEDSILO_COORDINATOR_KEY", str(Path(tmp) / "key.pem"))
        path = Path(tmp) / "ledger.sqlite"
        key = Ed25519PrivateKey.generate()
        start = RunStart("bench", "0" * 64, "fedavg", "none", "sgd", 0, args.records, {}, SITES)
        t0 = time.perf_counter()
        with Ledger(path, key) as ledger:
            record_run_start(ledger, start)
            for rnd in range(1, args.records + 1):
                rejected = [{"site": "va", "reason": "non-finite delta"}]
                entry = RoundEntry(rnd, "f" * 64, SITES, "none", rejected, epsilon=0.1 * rnd)
                record_round(ledger, entry)
        append_s = (time.perf_counter() - t0) / args.records
        t0 = time.perf_counter()
        result = verify_ledger(path, key.public_key(), require_end=False)
        verify_s = time.perf_counter() - t0
        size_kib = path.stat().st_size / 1024
        assert result.ok, result.problem
        big = [np.random.default_rng(0).normal(size=1_000_000).astype(np.float32)]
        t0 = time.perf_counter()
        weights_sha256(big)
        hash_big_s = time.perf_counter() - t0
        cfg = parse_config(
            {
                "name": "ledger-cost",
                "data": {"dataset": "heart_disease", "standardize": "federated"},
                "model": {"name": "logistic"},
                "training": {"rounds": args.rounds, "local_steps": 10, "batch_size": 8, "lr": 0.05},
            }
        )
        run = run_experiment(cfg, Path(tmp) / "run").result
        round_s = float(np.mean([r["wall_s"] for r in run.rounds]))
        t0 = time.perf_counter()
        weights_sha256(run.weights)
        hash_small_s = time.perf_counter() - t0
    print(f"append (sign + fsync commit): {append_s * 1e3:.2f} ms/record")
    rate = verify_s / (args.records + 2) * 1e6
    print(f"verify {args.records + 2} records: {verify_s * 1e3:.0f} ms ({rate:.0f} us/record)")
    print(f"ledger file: {size_kib:.0f} KiB ({size_kib * 1024 / (args.records + 2):.0f} B/record)")
    print(f"model hash, 1M float32 parameters: {hash_big_s * 1e3:.1f} ms")
    ledger_round = append_s + hash_small_s
    print(
        f"heart-disease logistic round: {round_s * 1e3:.1f} ms; ledger per round "
        f"(append + model hash): {ledger_round * 1e3:.2f} ms = {ledger_round / round_s:.1%}"
    )


if __name__ == "__main__":
    main()
