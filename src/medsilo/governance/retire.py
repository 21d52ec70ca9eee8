"""Retiring a run's final model once data it learned from has been withdrawn.

``RUN/RETIRED.json`` says why (reason), when (UTC time) and which run replaces it. Anything
that loads a run's final weights or reports on it calls :func:`warn_if_retired`.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RETIRED = "RETIRED.json"


def retire(run_dir: Path, reason: str, replacement: Path | None) -> Path:
    """Write the notice; ``replacement`` is ``None`` when no run replaces the model (a
    retirement the council decided, docs/governance.md "Quorum decisions")."""
    notice = {
        "retired": True,
        "reason": reason,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "replacement": None if replacement is None else str(replacement),
    }
    path = run_dir / RETIRED
    path.write_text(json.dumps(notice, indent=2) + "\n")
    return path


def retirement(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / RETIRED
    if not path.is_file():
        return None
    notice: dict[str, Any] = json.loads(path.read_text())
    return notice


def retired_message(run_dir: Path) -> str | None:
    notice = retirement(run_dir)
    if notice is None:
        return None
    instead = notice["replacement"]
    use = f"use {instead} instead" if instead is not None else "no run replaces it"
    return f"the model of {run_dir} was retired on {notice['date']} ({notice['reason']}); {use}"


def warn_if_retired(run_dir: Path) -> str | None:
    """Log a warning when ``run_dir``'s model is retired; the message, or ``None``."""
    message = retired_message(run_dir)
    if message is not None:
        log.warning(message)
    return message
