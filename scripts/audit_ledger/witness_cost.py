"""What site witnessing costs per round (docs/audit-ledger.md): bytes and milliseconds.

Part 1, the protocol alone: a ledger witnessed by ``--sites`` sites for ``--rounds`` rounds as
the round loop drives it (head proofs out, each site checks, countersigns and fsyncs its
witness file, the coordinator ledgers the countersignatures, then the round record). Per
round it reports the head-proof bytes a site receives, the countersignature bytes it sends,
the site's time (check + sign + fsync), the coordinator's (proofs + ledgering) and how much
the ledger file grows.

Part 2, end to end: the heart-disease FedAvg run of the in-process engine, with and without
witnessing, mean seconds per round (one run each, same process). Usage::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/audit_ledger/witness_cost.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medsilo.config import parse_config
from medsilo.ledger.engine_witnesses import EngineWitnessing, SimulatedSites
from medsilo.ledger.events import RoundEntry, RunStart, record_round, record_run_start
from medsilo.ledger.store import Ledger
from medsilo.ledger.witness import WITNESS_KIND
from medsilo.ledger.witness_feed import WitnessFeed
from medsilo.runtime.round_record import RoundRecord
from medsilo.runtime.simulation import run_federation

SITES = ["cleveland", "hungarian", "switzerland", "va"]


def protocol(directory: Path, sites: list[str], rounds: int) -> None:
    path = directory / "ledger.sqlite"
    witnesses = SimulatedSites(directory / "witness", sites)
    down, up, site_ms, coordinator_ms = [], [], [], []
    with Ledger(path, Ed25519PrivateKey.generate()) as ledger:
        feed = WitnessFeed(ledger, witnesses.pins())
        start = RunStart("bench", "0" * 64, "fedavg", "none", "sgd", 0, rounds, {}, sites)
        record_run_start(ledger, start)
        for rnd in range(1, rounds + 1):
            t0 = time.perf_counter()
            proofs = feed.proofs(sites)
            t1 = time.perf_counter()
            signed = {}
            for site, proof in proofs.items():
                s0 = time.perf_counter()
                signed[site] = witnesses.witnesses[site].witness(proof)
                site_ms.append(1000 * (time.perf_counter() - s0))
            t2 = time.perf_counter()
            feed.record(rnd, signed)
            t3 = time.perf_counter()
            coordinator_ms.append(1000 * ((t1 - t0) + (t3 - t2)))
            rejected = [{"site": "va", "reason": "non-finite delta"}]
            record_round(ledger, RoundEntry(rnd, "f" * 64, sites, "none", rejected, epsilon=0.1))
            if rnd > 1:  # round 1's proof is the whole ledger from genesis
                down += [len(p.to_bytes()) for p in proofs.values()]
                up += [len(s.to_bytes()) for s in signed.values()]
        stored = [r for r in ledger.records() if r.kind == WITNESS_KIND]
    columns = sum(
        len(r.payload) + len(r.timestamp + r.kind + r.prev_hash + r.hash + r.signature) + 8
        for r in stored
    )
    print(f"protocol, {len(sites)} sites, {rounds} rounds (rounds >= 2; medians):")
    print(f"  head proof to each site      {statistics.median(down):8.0f} B")
    print(f"  countersignature from a site {statistics.median(up):8.0f} B")
    print(f"  site: check + sign + fsync   {statistics.median(site_ms):8.2f} ms")
    print(f"  coordinator: proofs + ledger {statistics.median(coordinator_ms):8.2f} ms/round")
    print(f"  witness records in the ledger {columns / rounds:7.0f} B/round (column bytes)")
    print(f"  whole ledger file            {path.stat().st_size / rounds:8.0f} B/round")


def engine(directory: Path, rounds: int, repeats: int) -> None:
    raw = {
        "name": "witness-bench",
        "seed": 0,
        "data": {"dataset": "heart_disease", "partition": "natural"},
        "model": {"name": "logistic"},
        "training": {"rounds": rounds, "local_steps": 20, "batch_size": 16, "lr": 0.05},
    }
    cfg = parse_config(raw)
    plain_s, witnessed_s = [], []
    for repeat in range(repeats):  # interleaved; the fastest mean of each is the least loaded
        plain = run_federation(cfg)
        plain_s.append(statistics.mean(r.wall_s for r in plain.rounds))
        with Ledger(directory / f"engine{repeat}.sqlite", Ed25519PrivateKey.generate()) as ledger:
            names = list(plain.site_states)
            sites = SimulatedSites(directory / f"engine{repeat}", names)
            witnessing = EngineWitnessing(WitnessFeed(ledger, sites.pins()), sites)

            def keep(record: RoundRecord, ledger: Ledger = ledger) -> None:
                record_round(ledger, RoundEntry.from_round_record(record, "none"))

            witnessed = run_federation(cfg, on_round=keep, witnessing=witnessing)
        witnessed_s.append(statistics.mean(r.wall_s for r in witnessed.rounds))
    a, b = min(plain_s), min(witnessed_s)
    print(f"engine, heart disease, {rounds} rounds, best of {repeats}:")
    print(f"  {1000 * a:.1f} ms/round without witnessing, {1000 * b:.1f} ms/round with")
    print(f"  ({1000 * (b - a):+.1f} ms, {100 * (b - a) / a:+.1f}%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--sites", type=int, default=len(SITES))
    parser.add_argument("--engine-rounds", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("MEDSILO_COORDINATOR_KEY", str(Path(tmp) / "key.pem"))
        sites = [f"site{i}" for i in range(args.sites)]
        protocol(Path(tmp), sites, args.rounds)
        engine(Path(tmp), args.engine_rounds, args.repeats)


if __name__ == "__main__":
    main()
