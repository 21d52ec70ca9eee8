"""A coordinator ledger witnessed by three sites, and the ledger attacks the witnesses must catch.

Layout of :func:`witnessed_run` with 3 rounds (seq: kind): 1 genesis, 2 run_start; each round
shows every site the head (2, 6, 10), ledgers 3 countersignatures, then the round (6, 10,
14); 15 run_end, whose head the sites witness once more (16..18 countersignatures).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medsilo.ledger.engine_witnesses import SimulatedSites
from medsilo.ledger.events import (
    RoundEntry,
    RunEnd,
    RunStart,
    record_round,
    record_run_end,
    record_run_start,
)
from medsilo.ledger.store import GENESIS, Ledger, open_readonly, read_records
from medsilo.ledger.witness_feed import WitnessFeed
from medsilo.ledger.witness_verify import WitnessFinding, WitnessLog, check_witnesses

from .conftest import tamper

SITES = ["a", "b", "c"]
ROUNDS = 3
FIRST_HEAD, ROUND_2, RUN_END, LAST = 2, 10, 15, 18


def start_run(ledger: Ledger, rounds: int = ROUNDS) -> None:
    record_run_start(
        ledger, RunStart("t", "c" * 64, "fedavg", "none", "sgd", 0, rounds, {"d": 1}, SITES)
    )


def witnessed_round(
    ledger: Ledger, feed: WitnessFeed, sites: SimulatedSites, rnd: int, rejected: bool = False
) -> None:
    """One round as the round loop runs it: heads out, countersignatures in, the round."""
    feed.record(rnd, sites.countersign(feed.proofs(sites.names)))
    reasons = [{"site": "b", "reason": "non-finite delta"}] if rejected else []
    record_round(ledger, RoundEntry(rnd, f"{rnd:064x}", SITES, "none", reasons))


def end_run(ledger: Ledger, feed: WitnessFeed, sites: SimulatedSites, rounds: int = ROUNDS) -> None:
    record_run_end(ledger, RunEnd(rounds, f"{rounds:064x}"))
    feed.final(sites.names, sites.countersign)


def witnessed_run(path: Path, key: Ed25519PrivateKey, sites: SimulatedSites) -> None:
    with Ledger(path, key) as ledger:
        feed = WitnessFeed(ledger, sites.pins())
        start_run(ledger)
        for rnd in range(1, ROUNDS + 1):
            witnessed_round(ledger, feed, sites, rnd)
        end_run(ledger, feed, sites)


def stored(path: Path) -> list[Any]:
    conn = open_readonly(path)
    try:
        return list(read_records(conn))
    finally:
        conn.close()


def findings(ledger: Path, sites: SimulatedSites) -> list[WitnessFinding]:
    """What the sites' files say about ``ledger``, with the sites' keys pinned."""
    logs = [WitnessLog.read(w.path) for w in sites.witnesses.values() if w.path.exists()]
    return check_witnesses(stored(ledger), logs, sites.pins())


def where(found: list[WitnessFinding]) -> set[tuple[str, str, int]]:
    """``(what, site, seq)`` of each finding."""
    return {(f.what, f.site, f.seq) for f in found}


Change = Callable[[str, dict[str, Any]], dict[str, Any]]


def rewrite_from(path: Path, seq: int, key: Ed25519PrivateKey, change: Change) -> None:
    """The coordinator rewrites its own history: records from ``seq`` on are removed and
    appended again, signed with ``key``, each payload passed through ``change(kind, payload)``.
    With ``seq == 1`` and a new key it is a whole chain re-signed under that key."""
    tail = [r for r in stored(path) if r.seq >= seq]
    tamper(path, "DELETE FROM records WHERE seq >= ?", (seq,))
    with Ledger(path, key) as ledger:  # a new genesis when everything was removed
        for record in tail:
            if record.kind != GENESIS:
                ledger.append(record.kind, change(record.kind, json.loads(record.payload)))


def truncate_after(path: Path, seq: int) -> None:
    tamper(path, "DELETE FROM records WHERE seq > ?", (seq,))
