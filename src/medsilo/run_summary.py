"""``summary.json``: what a run did, written even when it did not finish.

A run that stopped early (Ctrl-C, a crash, during training or during leave-one-hospital-out)
still gets a summary of what is known, marked ``"complete": false`` with an
``incomplete_reason``, so the folder stays usable (``medsilo report`` reads it). Every
summary counts the updates the sites sent and the coordinator rejected: a run whose updates
were mostly rejected did not really train, so above ``training.max_rejected_fraction`` it
is marked ``"failed": true`` with a ``failure_reason``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from medsilo.config import RunConfig
from medsilo.runtime.round_record import RoundRecord


def final_fields(last: RoundRecord | None) -> dict[str, Any]:
    """``final`` (the last round's evaluation: pooled and per-site test metrics and the
    clinical metrics) and ``metric_intervals`` (95% bootstrap intervals) of a summary."""
    record = {} if last is None else last.to_json()
    final = {k: record.get(k) for k in ("test", "per_site", "mean_site_accuracy", "metrics")}
    return {"final": final, "metric_intervals": record.get("metric_intervals")}


def rejection_fields(rounds: list[RoundRecord], max_fraction: float) -> dict[str, Any]:
    """``updates_sent``, ``updates_rejected``, ``rejected_fraction`` and ``failed`` (with a
    ``failure_reason`` when the fraction exceeds ``max_fraction``)."""
    sent = sum(len(r.get("bytes_up_site") or {}) for r in rounds)
    rejected = sum(len(r.get("rejected") or []) for r in rounds)
    fraction = rejected / sent if sent else 0.0
    out: dict[str, Any] = {
        "updates_sent": sent,
        "updates_rejected": rejected,
        "rejected_fraction": fraction,
        "failed": fraction > max_fraction,
    }
    if out["failed"]:
        out["failure_reason"] = (
            f"{rejected} of {sent} updates were rejected ({fraction:.0%}), more than "
            f"training.max_rejected_fraction {max_fraction:g}: the model did not really train"
        )
    return out


def run_summary(
    cfg: RunConfig,
    sites: list[str],
    rounds: list[RoundRecord],
    loho: Mapping[str, Mapping[str, float | int]] | None,
    wall_s: float,
    model_weights_sha256: str | None = None,
) -> dict[str, Any]:
    """The summary of a run that produced ``rounds`` (and ``loho``, when it ran), marked
    complete; :func:`mark_incomplete` turns it into the summary of an interrupted run.
    ``model_weights_sha256`` is that of the ``model.weights`` file the run started from."""
    last = rounds[-1] if rounds else {}
    summary: dict[str, Any] = {
        "name": cfg.name,
        "algorithm": cfg.algorithm.name,
        "server_optimizer": cfg.server_optimizer.name,
        "dataset": cfg.data.dataset,
        "partition": cfg.data.partition,
        "model": cfg.model.source,
        "model_weights_sha256": model_weights_sha256,
        "sites": sites,
        "seed": cfg.seed,
        "rounds": cfg.training.rounds,
        "rounds_completed": len(rounds),
        "complete": True,
        "bytes_up_total": sum(r["bytes_up"] for r in rounds),
        "bytes_down_total": sum(r["bytes_down"] for r in rounds),
        "asynchrony": cfg.asynchrony.mode,
        "sim_clock_s": last.get("sim_clock_s"),
    }
    summary.update(final_fields(rounds[-1] if rounds else None))
    summary.update(rejection_fields(rounds, cfg.training.max_rejected_fraction))
    if "privacy" in last:  # docs/privacy.md: epsilon spent, and why training stopped early
        summary["privacy"] = last["privacy"]
        summary["stop_reason"] = last.get("stop_reason")
    if loho:
        summary["loho"] = dict(loho)
        summary["loho_mean_accuracy"] = float(np.mean([v["accuracy"] for v in loho.values()]))
    summary["wall_s"] = wall_s
    return summary


def mark_incomplete(summary: dict[str, Any], phase: str, error: BaseException) -> None:
    """Mark ``summary`` as that of a run stopped during ``phase`` by ``error``."""
    what = type(error).__name__ + (f": {error}" if str(error) else "")
    summary["complete"] = False
    summary["incomplete_reason"] = f"stopped during {phase} ({what})"
