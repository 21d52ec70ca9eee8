"""A small signed ledger and ways to tamper with it as an attacker with file access would."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medsilo.ledger.events import (
    RoundEntry,
    RunEnd,
    RunStart,
    record_round,
    record_run_end,
    record_run_start,
)
from medsilo.ledger.store import Ledger

ROUNDS = 3  # seq 1 genesis, 2 run_start, 3..5 rounds, 6 run_end


def write_ledger(path: Path, key: Ed25519PrivateKey) -> None:
    with Ledger(path, key) as ledger:
        record_run_start(
            ledger,
            RunStart(
                "t", "c" * 64, "fedavg", "none", "sgd", 0, ROUNDS, {"dataset": "x"}, ["a", "b"]
            ),
        )
        for rnd in range(1, ROUNDS + 1):
            rejected = [{"site": "b", "reason": "non-finite delta"}] if rnd == 2 else []
            entry = RoundEntry(rnd, f"{rnd:064x}", ["a", "b"], "none", rejected, epsilon=0.5 * rnd)
            record_round(ledger, entry)
        record_run_end(ledger, RunEnd(ROUNDS, f"{ROUNDS:064x}"))


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def ledger_file(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    path = tmp_path / "ledger.sqlite"
    write_ledger(path, key)
    return path


def tamper(path: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    """Run ``sql`` on the ledger after dropping the append-only triggers (as anyone who
    can write the file can)."""
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER IF EXISTS records_no_update")
    conn.execute("DROP TRIGGER IF EXISTS records_no_delete")
    conn.execute(sql, params)
    conn.commit()
    conn.close()


def flip_payload_byte(path: Path, seq: int, index: int | None = None) -> None:
    """XOR one byte of record ``seq``'s stored payload with 0x01 (middle byte by default)."""
    conn = sqlite3.connect(path)
    (payload,) = conn.execute("SELECT payload FROM records WHERE seq = ?", (seq,)).fetchone()
    conn.close()
    data = bytearray(payload)
    i = len(data) // 2 if index is None else index
    data[i] ^= 0x01
    tamper(path, "UPDATE records SET payload = ? WHERE seq = ?", (bytes(data), seq))
