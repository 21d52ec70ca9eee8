"""Where the bundled datasets live.

The repo ships its data so that runs work offline; an installed copy (or a data folder kept
elsewhere) is pointed at with ``MEDSILO_DATA_DIR`` instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from medsilo.data.base import DataFormatError

ENV_VAR = "MEDSILO_DATA_DIR"


def data_root() -> Path:
    """The data folder: ``$MEDSILO_DATA_DIR`` if set, else the repository's ``data/``."""
    env = os.environ.get(ENV_VAR)
    root = Path(env).expanduser() if env else Path(__file__).resolve().parents[3] / "data"
    if not root.is_dir():
        source = f"${ENV_VAR}" if env else "the repository's data/ folder"
        raise DataFormatError(
            f"data folder not found: looked for {root} ({source}). "
            f"Set {ENV_VAR} to the folder that holds heart_disease/, mnist/, ... "
            f"(e.g. export {ENV_VAR}=/path/to/medsilo/data)."
        )
    return root.resolve()


def resolve_root(root: Path | str | None) -> Path:
    """An absolute root, so that caches keyed by it do not depend on the working directory."""
    return data_root() if root is None else Path(root).expanduser().resolve()


def anchored(path: Path, folder: Path) -> Path:
    """``path`` read relative to ``folder`` (a config file's folder) unless it is absolute;
    ``~`` is expanded first."""
    path = path.expanduser()
    return path if path.is_absolute() else folder / path


def require_file(path: Path) -> Path:
    """Fail early with the full expected path, rather than with a bare ``FileNotFoundError``."""
    if not path.is_file():
        raise DataFormatError(
            f"missing data file: expected {path}. Copy the bundled data/ folder there or set "
            f"{ENV_VAR} to the folder that holds it."
        )
    return path
