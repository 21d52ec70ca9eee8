"""The dashboard's releases, kept with the run so a restart cannot draw fresh noise.

A Laplace release is only ``epsilon``-DP if it is drawn once. Caching it in memory protects
against reloading the page, not against restarting ``medsilo dashboard``: a new process would
draw new noise for the same rounds and, averaged over restarts, the noise goes away. So every
release is appended to ``dashboard_releases.jsonl`` beside the run's ``rounds.jsonl`` before it
is shown, and a restarted dashboard shows the stored value instead of drawing again.

A release is keyed by round, site and a digest of the raw values it was drawn from: a run
rewritten in place with the same records (a resumed run) gets its old releases back, while a
different run written into the same directory gets new ones. Every line stored costs its
``epsilon``, so the budget spent per site is the sum over the file, across all restarts. The
file is locked while a release is looked up and appended, so two dashboards on one run never
draw the same release twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RELEASES = "dashboard_releases.jsonl"

Released = dict[str, float | int | None]
Key = tuple[int, str, str]


def raw_digest(raw: dict[str, Any]) -> str:
    """Digest of the raw health a release was drawn from (which run's round it belongs to)."""
    text = json.dumps(raw, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class ReleaseStore:
    """Releases by (round, site, raw digest), in memory and, given a path, on disk."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._released: dict[Key, Released] = {}
        self._spent: dict[str, float] = {}
        self._offset = 0

    def get_or_draw(
        self, rnd: int, site: str, raw: dict[str, Any], epsilon: float, draw: Callable[[], Released]
    ) -> Released:
        """The stored release of this round's raw health, drawing (and storing) it only once."""
        key = (rnd, site, raw_digest(raw))
        if key in self._released:
            return self._released[key]
        with self._locked():
            self._read_new_lines()
            if key not in self._released:
                released = draw()
                self._append({"round": rnd, "site": site, "raw_digest": key[2],
                              "epsilon": epsilon, "released": released})  # fmt: skip
        return self._released[key]

    def epsilon_spent(self) -> dict[str, float]:
        """Dashboard budget spent per site over every release ever stored for this run."""
        return dict(self._spent)

    def load(self) -> None:
        """Read releases stored by earlier dashboards (no-op in memory or before the file)."""
        with self._locked():
            self._read_new_lines()

    def _add(self, line: dict[str, Any]) -> None:
        key = (int(line["round"]), str(line["site"]), str(line["raw_digest"]))
        self._released.setdefault(key, dict(line["released"]))
        self._spent[key[1]] = self._spent.get(key[1], 0.0) + float(line["epsilon"])

    def _append(self, line: dict[str, Any]) -> None:
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\n")
                fh.flush()
            self._offset = self.path.stat().st_size
        self._add(line)

    def _read_new_lines(self) -> None:
        if self.path is None or not self.path.is_file():
            return
        with self.path.open("rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read()
        complete, _, _ = chunk.rpartition(b"\n")
        if complete:
            self._offset += len(complete) + 1
            for text in complete.split(b"\n"):
                if text.strip():
                    self._add(json.loads(text))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self.path is None:
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
