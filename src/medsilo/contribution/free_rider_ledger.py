"""Free-rider flags as signed ``free_rider`` records in the run's audit ledger.

A flag decides a site's reward share (0), so it belongs in the tamper-evident history next
to the rounds it describes (docs/audit-ledger.md). ``medsilo contribution RUN`` appends one
record per flag when the run has a ledger; a flag already recorded there (same run, site,
rule and rounds: scoring the run again) is not recorded twice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medsilo.ledger.keys import load_or_create_private_key
from medsilo.ledger.run_ledger import LEDGER_FILE
from medsilo.ledger.store import Ledger

FREE_RIDER_KIND = "free_rider"  # the record kind (medsilo.ledger.verify.KINDS)


def check_ledger_writable(run_dir: Path) -> None:
    """Refuse up front (``ValueError``) a run whose ledger this coordinator cannot sign for,
    so that the command fails before scoring rather than after writing its results."""
    path = run_dir / LEDGER_FILE
    if path.is_file():
        Ledger(path, load_or_create_private_key()).close()


def record_free_riders(run_dir: Path, run: str, flags: list[dict[str, Any]]) -> int:
    """Append the flags not yet in ``RUN``'s ledger; returns how many were appended."""
    path = run_dir / LEDGER_FILE
    if not flags or not path.is_file():
        return 0
    payloads = [{"run": run, **flag} for flag in flags]
    with Ledger(path, load_or_create_private_key()) as ledger:
        recorded = [json.loads(r.payload) for r in ledger.records() if r.kind == FREE_RIDER_KIND]
        new = [p for p in payloads if p not in recorded]
        for payload in new:
            ledger.append(FREE_RIDER_KIND, payload)
    return len(new)
