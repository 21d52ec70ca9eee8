"""Tail a run directory while the run writes it.

:func:`medsilo.experiment.run_experiment` appends one JSON line per round to ``rounds.jsonl``
and flushes it, then writes ``summary.json`` at the end. A reader polling that file can see a
line half written, so :class:`RunTail` only consumes up to the last newline and keeps its
byte offset: each poll reads just what was appended since the last one. A file that shrank
(a resumed run rewrites it) is read again from the start.

The directory may not hold a run yet: ``RUN`` can be where a run is about to be written, or a
suite directory (``medsilo simulate --out``) whose runs are sub-directories; the newest
``rounds.jsonl`` found there is followed, and the tail waits until one appears.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medsilo.runtime.round_record import RoundRecord

ROUNDS = "rounds.jsonl"
SUMMARY = "summary.json"


def find_rounds_file(run: Path) -> Path | None:
    """``run/rounds.jsonl``, else the newest ``run/*/rounds.jsonl``, else ``None``."""
    direct = run / ROUNDS
    if direct.is_file():
        return direct
    nested = [p for p in run.glob(f"*/{ROUNDS}") if p.is_file()]
    if not nested:
        return None
    return max(nested, key=lambda p: p.stat().st_mtime)


class RunTail:
    """Incremental reader of a run's round records (and its summary once written)."""

    def __init__(self, run: Path) -> None:
        self.run = run
        self.rounds_file: Path | None = None
        self._offset = 0
        self._partial = b""

    def poll(self) -> tuple[list[RoundRecord], bool]:
        """Records completed since the last poll, and whether the file restarted (so a
        consumer must drop what it built from the earlier records)."""
        if self.rounds_file is None:
            self.rounds_file = find_rounds_file(self.run)
            if self.rounds_file is None:
                return [], False
        try:
            size = self.rounds_file.stat().st_size
        except FileNotFoundError:
            return [], False
        restarted = size < self._offset
        if restarted:
            self._offset = 0
        if size == self._offset:
            return [], restarted
        with self.rounds_file.open("rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read(size - self._offset)
        self._offset += len(chunk)
        data = chunk if restarted else self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        records = [RoundRecord.from_fields(json.loads(line)) for line in complete if line.strip()]
        return records, restarted

    def summary(self) -> dict[str, Any] | None:
        """``summary.json`` beside the followed ``rounds.jsonl`` once complete, else ``None``."""
        if self.rounds_file is None:
            return None
        path = self.rounds_file.parent / SUMMARY
        try:
            loaded = json.loads(path.read_text("utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):  # not there yet, or half written
            return None
        return loaded if isinstance(loaded, dict) else None
