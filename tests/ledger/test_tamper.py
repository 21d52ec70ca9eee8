"""Flip one byte or delete one record and verification fails at exactly that record."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medsilo.ledger.chain import record_digest
from medsilo.ledger.store import open_readonly, read_records
from medsilo.ledger.verify import verify_ledger

from .conftest import ROUNDS, flip_payload_byte, tamper, write_ledger

LAST = ROUNDS + 3


def test_intact_ledger_verifies(ledger_file: Path, key: Ed25519PrivateKey) -> None:
    result = verify_ledger(ledger_file, key.public_key())
    assert result.ok and result.problem is None
    assert result.records == result.verified == LAST
    conn = open_readonly(ledger_file)
    records = list(read_records(conn))
    conn.close()
    assert [r.kind for r in records] == ["genesis", "run_start"] + ["round"] * ROUNDS + ["run_end"]
    assert result.head_hash == records[-1].hash
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))


@pytest.mark.parametrize("seq", range(1, LAST + 1))
def test_flipped_payload_byte_fails_at_that_record(
    ledger_file: Path, key: Ed25519PrivateKey, seq: int
) -> None:
    flip_payload_byte(ledger_file, seq)
    result = verify_ledger(ledger_file, key.public_key())
    assert result.problem is not None
    assert result.problem.seq == seq
    assert "hash mismatch" in result.problem.reason
    assert result.verified == seq - 1


@pytest.mark.parametrize("column", ["timestamp", "kind", "prev_hash"])
def test_any_hashed_column_is_covered(
    ledger_file: Path, key: Ed25519PrivateKey, column: str
) -> None:
    conn = sqlite3.connect(ledger_file)
    (value,) = conn.execute(f"SELECT {column} FROM records WHERE seq = 4").fetchone()
    conn.close()
    changed = value[:-1] + ("1" if value[-1] != "1" else "2")
    tamper(ledger_file, f"UPDATE records SET {column} = ? WHERE seq = 4", (changed,))
    problem = verify_ledger(ledger_file, key.public_key()).problem
    assert problem is not None and problem.seq == 4


@pytest.mark.parametrize("seq", range(2, LAST))
def test_deleted_record_is_named_at_the_gap(
    ledger_file: Path, key: Ed25519PrivateKey, seq: int
) -> None:
    tamper(ledger_file, "DELETE FROM records WHERE seq = ?", (seq,))
    problem = verify_ledger(ledger_file, key.public_key()).problem
    assert problem is not None
    assert problem.seq == seq + 1 and problem.missing_seq == seq
    assert f"record(s) {seq} missing" in problem.reason


def test_deleted_and_renumbered_record_breaks_the_link(
    ledger_file: Path, key: Ed25519PrivateKey
) -> None:
    """Closing the gap by renumbering does not help: the next record's prev_hash differs."""
    tamper(ledger_file, "DELETE FROM records WHERE seq = 4")
    tamper(ledger_file, "UPDATE records SET seq = seq - 1 WHERE seq > 4")
    problem = verify_ledger(ledger_file, key.public_key()).problem
    assert problem is not None and problem.seq == 4
    assert "prev_hash" in problem.reason


def test_recomputed_hash_without_the_key_fails_the_signature(
    ledger_file: Path, key: Ed25519PrivateKey
) -> None:
    conn = open_readonly(ledger_file)
    rec = next(r for r in read_records(conn) if r.seq == 3)
    conn.close()
    forged = rec.payload.replace(b'"rejected":[]', b'"rejected":[{"site":"a","reason":"x"}]')
    assert forged != rec.payload
    new_hash = record_digest(rec.seq, rec.timestamp, rec.kind, forged, rec.prev_hash).hex()
    tamper(
        ledger_file,
        "UPDATE records SET payload = ?, hash = ? WHERE seq = 3",
        (forged, new_hash),
    )
    problem = verify_ledger(ledger_file, key.public_key()).problem
    assert problem is not None and problem.seq == 3 and "signature" in problem.reason
    assert problem.round == 1


def test_altered_signature_fails_at_that_record(ledger_file: Path, key: Ed25519PrivateKey) -> None:
    conn = sqlite3.connect(ledger_file)
    (sig,) = conn.execute("SELECT signature FROM records WHERE seq = 5").fetchone()
    conn.close()
    flipped = ("1" if sig[0] != "1" else "2") + sig[1:]
    tamper(ledger_file, "UPDATE records SET signature = ? WHERE seq = 5", (flipped,))
    problem = verify_ledger(ledger_file, key.public_key()).problem
    assert problem is not None and problem.seq == 5 and "signature" in problem.reason
    assert problem.kind == "round" and problem.round == 3


def test_wrong_public_key_fails_at_the_first_record(ledger_file: Path) -> None:
    other = Ed25519PrivateKey.generate().public_key()
    problem = verify_ledger(ledger_file, other).problem
    assert problem is not None and problem.seq == 1 and "signature" in problem.reason


def test_chain_re_signed_with_another_key_is_caught_only_by_the_pinned_key(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    """A whole ledger rewritten under the forger's own key verifies with the forger's key:
    only a site that pinned the coordinator's key (fingerprint) sees the forgery."""
    forger = Ed25519PrivateKey.generate()
    forged = tmp_path / "forged.sqlite"
    write_ledger(forged, forger)
    assert verify_ledger(forged, forger.public_key()).ok
    problem = verify_ledger(forged, key.public_key()).problem
    assert problem is not None and problem.seq == 1


def test_cut_tail_shows_only_through_the_missing_run_end(
    ledger_file: Path, key: Ed25519PrivateKey
) -> None:
    tamper(ledger_file, "DELETE FROM records WHERE seq >= ?", (LAST - 1,))
    problem = verify_ledger(ledger_file, key.public_key()).problem
    assert problem is not None and problem.seq == LAST - 2 and "no run_end" in problem.reason
    lenient = verify_ledger(ledger_file, key.public_key(), require_end=False)
    assert lenient.ok and lenient.warnings and lenient.verified == LAST - 2


def test_append_only_triggers_refuse_update_and_delete(ledger_file: Path) -> None:
    conn = sqlite3.connect(ledger_file)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE records SET kind = 'x' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM records WHERE seq = 2")
    conn.close()
