"""What a folder holds, byte for byte: to prove a command changed only what it should."""

from __future__ import annotations

import hashlib
from pathlib import Path


def tree_hashes(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (path relative to it) -> SHA-256 of its bytes; SQLite's
    shared-memory and write-ahead files, which merely reading a ledger creates, are left out."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.endswith(("-shm", "-wal"))
    }
