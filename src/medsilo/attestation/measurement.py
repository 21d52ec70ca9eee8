"""The software backend's code measurement: one SHA-256 over a set of files.

    measurement = SHA-256( concat over files sorted by relative path of
                           relpath_utf8 || 0x00 || SHA-256(file bytes) || 0x0a )

Relative paths are part of the hash so moving or renaming a file changes it; ``__pycache__``
and ``*.pyc`` are skipped (they depend on the interpreter, not on the code).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import medsilo


def measure_files(root: Path) -> str:
    """Measurement of ``root`` (a file, or every file under a folder)."""
    if root.is_file():
        return hashlib.sha256(root.read_bytes()).hexdigest()
    if not root.is_dir():
        raise FileNotFoundError(f"nothing to measure at {root}")
    outer = hashlib.sha256()
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    for path in files:
        outer.update(path.relative_to(root).as_posix().encode("utf-8") + b"\x00")
        outer.update(hashlib.sha256(path.read_bytes()).digest() + b"\n")
    return outer.hexdigest()


def package_measurement() -> str:
    """Measurement of the installed ``medsilo`` package source."""
    return measure_files(Path(medsilo.__file__).parent)
