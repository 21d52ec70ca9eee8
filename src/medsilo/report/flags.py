"""Warnings a run's ``summary.json`` carries about itself, shown on its row of the report.

A run whose validator rejected most site updates, that stopped before its last round, or
that failed, still has numbers; a table that shows them without comment reads as a success.
Keys (all optional): ``failed`` (``true`` or the error text), ``complete`` (``false`` when
the run ended early), ``updates_rejected`` / ``updates_sent`` (site updates the update
validator refused, and all that arrived) and ``rejected_fraction`` (their ratio, used when
the counts are absent).
"""

from __future__ import annotations

from collections.abc import Mapping

from medsilo.report.runs import RunResult


def run_flags(run: RunResult) -> list[str]:
    """Short warnings for ``run``, most serious first (``"FAILED"``, ``"incomplete"``,
    ``"rejected 45/60 updates"``); empty for a run that finished cleanly."""
    raw = run.summary.raw
    flags: list[str] = []
    failed = raw.get("failed")
    if isinstance(failed, str) and failed.strip():
        flags.append(f"FAILED: {failed.strip()}")
    elif failed is True:
        flags.append("FAILED")
    if raw.get("complete") is False:
        planned = run.summary.rounds
        done = len(run.rounds)
        progress = f" ({done}/{planned} rounds)" if planned is not None else ""
        flags.append(f"incomplete{progress}")
    rejected = _rejected(raw)
    if rejected is not None:
        flags.append(rejected)
    return flags


def _rejected(raw: Mapping[str, object]) -> str | None:
    rejected, sent = _number(raw.get("updates_rejected")), _number(raw.get("updates_sent"))
    if rejected is not None:
        if rejected <= 0:
            return None
        of = f"/{sent:.0f}" if sent else ""
        return f"rejected {rejected:.0f}{of} updates"
    fraction = _number(raw.get("rejected_fraction"))
    return f"rejected {fraction:.0%} of updates" if fraction else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
