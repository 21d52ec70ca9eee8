"""The ledger file: one SQLite table, appended to only through :class:`Ledger`.

Schema (``records``): ``seq INTEGER PRIMARY KEY`` (1, 2, ... with no gaps), ``timestamp``
TEXT (ISO-8601 UTC), ``kind`` TEXT, ``payload`` BLOB (canonical JSON bytes,
:mod:`~medsilo.ledger.canonical`), ``prev_hash``/``hash``/``signature`` TEXT (hex). The
first record is a ``genesis`` record naming the format and the signing key.

Append-only: the API has no update or delete, and SQLite triggers abort ``UPDATE`` and
``DELETE`` on the table. Triggers only stop accidents: whoever can write the file can drop
them, which is why every record is hashed, chained and signed (:mod:`~medsilo.ledger.verify`).

Durability: WAL journal with ``synchronous=FULL`` (each append is on disk when
:meth:`Ledger.append` returns; a crash loses no appended record), ``BEGIN IMMEDIATE`` around
read-last-then-insert so two writers cannot fork the chain; :meth:`Ledger.close`
checkpoints the WAL into the main file so a copy of ``ledger.sqlite`` alone is complete.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medsilo.ledger.canonical import canonical_json
from medsilo.ledger.chain import GENESIS_PREV, LedgerRecord, record_digest
from medsilo.ledger.keys import fingerprint, raw_public

FORMAT = "medsilo-ledger/1"
GENESIS = "genesis"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    timestamp TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only'); END;
"""

_COLUMNS = "seq, timestamp, kind, payload, prev_hash, hash, signature"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def read_records(conn: sqlite3.Connection, after: int = 0) -> Iterator[LedgerRecord]:
    """Every stored row with ``seq > after`` in ``seq`` order, as stored (no checks)."""
    query = f"SELECT {_COLUMNS} FROM records WHERE seq > ? ORDER BY seq"
    for row in conn.execute(query, (after,)):
        seq, ts, kind, payload, prev, digest, sig = row
        data = payload if isinstance(payload, bytes) else str(payload).encode()
        yield LedgerRecord(int(seq), str(ts), str(kind), data, str(prev), str(digest), str(sig))


def open_readonly(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise FileNotFoundError(f"no ledger at {path}")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


class Ledger:
    """An open ledger the coordinator appends to with its signing key."""

    def __init__(self, path: Path, key: Ed25519PrivateKey) -> None:
        self.path = path
        self.key = key
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(_SCHEMA)
        public = key.public_key()
        first = self.conn.execute("SELECT payload FROM records ORDER BY seq LIMIT 1").fetchone()
        if first is not None:  # appending under another key would break every later signature
            try:
                named = json.loads(first[0]).get("public_key")
            except (ValueError, AttributeError):
                named = None
            if named != raw_public(public).hex():
                self.conn.close()
                raise ValueError(f"{path} was started with another coordinator key")
        else:
            self.append(
                GENESIS,
                {
                    "format": FORMAT,
                    "hash": "sha256",
                    "signature": "ed25519",
                    "public_key": raw_public(public).hex(),
                    "public_key_sha256": fingerprint(public),
                },
            )

    def append(self, kind: str, payload: dict[str, Any]) -> LedgerRecord:
        """Sign and store one record after the current last one; returns it as stored."""
        data = canonical_json(payload)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            last = self.conn.execute(
                "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq, prev = (1, GENESIS_PREV) if last is None else (int(last[0]) + 1, str(last[1]))
            timestamp = _now()
            digest = record_digest(seq, timestamp, kind, data, prev)
            record = LedgerRecord(
                seq, timestamp, kind, data, prev, digest.hex(), self.key.sign(digest).hex()
            )
            self.conn.execute(
                f"INSERT INTO records ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (seq, timestamp, kind, data, prev, record.hash, record.signature),
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return record

    def records(self) -> list[LedgerRecord]:
        return list(read_records(self.conn))

    def records_after(self, seq: int) -> list[LedgerRecord]:
        """The stored records with a ``seq`` above ``seq``, in order (what a site that has
        witnessed up to ``seq`` has not seen yet)."""
        return list(read_records(self.conn, after=seq))

    def record_at(self, seq: int) -> LedgerRecord | None:
        return next(read_records(self.conn, after=seq - 1), None)

    def close(self) -> None:
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
