"""Compute a run's contribution scores and keep them as ``contribution.json``.

One full run (re-run from the run directory's ``config.yaml``; deterministic for the seed,
and required to reproduce ``final_weights.npz`` when present, :mod:`~medsilo.contribution
.run_model`) gives ``metric(w_N)`` and, with the
GTG observer attached, the round-wise Shapley values, and with the free-rider detector the
flags (:mod:`~medsilo.contribution.free_riders`, also appended to the run's ledger);
leave-one-out adds one run per site. The reward shares (:mod:`~medsilo.contribution.shares`)
follow from the scores and the flags.
The JSON is what the report (:mod:`medsilo.report`) and the bar chart read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import torch

from medsilo.config import RunConfig, load_config
from medsilo.contribution.free_rider_ledger import check_ledger_writable, record_free_riders
from medsilo.contribution.free_riders import (
    FreeRiderDetector,
    detection_unsupported_reason,
    flagged_sites,
)
from medsilo.contribution.gtg import GTGSettings
from medsilo.contribution.loo import leave_one_out
from medsilo.contribution.metric import Metric, Validator
from medsilo.contribution.noise import site_order_noise
from medsilo.contribution.observed import (
    RoundObserver,
    run_observed,
    shapley_observer,
    unsupported_reason,
)
from medsilo.contribution.run_model import (
    require_configured_model,
    require_reproduced,
    saved_final_weights,
)
from medsilo.contribution.shares import shares_entry
from medsilo.data.base import FederatedData
from medsilo.data.registry import build_federation
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.round_record import RoundRecord
from medsilo.runtime.simulation import run_federation

Method = Literal["loo", "shapley", "both"]
CONTRIBUTION_FILE = "contribution.json"

#: ``on_round(phase, record)``: phase is ``"full"`` or the name of the site left out.
PhaseCallback = Callable[[str, RoundRecord], None]


def contribution_scores(
    cfg: RunConfig,
    method: Method = "both",
    metric: Metric = "accuracy",
    settings: GTGSettings | None = None,
    fed: FederatedData | None = None,
    run_dir: Path | None = None,
    on_round: PhaseCallback | None = None,
    noise_orders: int = 0,
) -> dict[str, Any]:
    """The ``contribution.json`` content for ``cfg`` (``fed`` defaults to its data section).

    ``noise_orders`` >= 2 adds the site-order noise floor of leave-one-out
    (:mod:`medsilo.contribution.noise`), at one more run per order (the first is the full
    run again).
    """
    if method not in ("loo", "shapley", "both"):
        raise ValueError(f"unknown method {method!r}; choose loo, shapley or both")
    settings = settings or GTGSettings(seed=cfg.seed)
    shapley_wanted = method in ("shapley", "both")
    if shapley_wanted and (reason := unsupported_reason(cfg)) is not None:
        raise ValueError(f"GTG-Shapley cannot score this run: {reason}")
    start = time.perf_counter()
    fed = fed if fed is not None else build_federation(cfg.data, cfg.seed)
    prep = PreparedFederation.build(cfg, fed)
    saved = saved_final_weights(run_dir)
    if saved is not None:
        require_configured_model(prep.initial_weights, saved)

    def full_round(record: RoundRecord) -> None:
        if on_round is not None:
            on_round("full", record)

    observers: list[RoundObserver] = []
    gtg = shapley_observer(cfg, prep, metric, settings) if shapley_wanted else None
    if gtg is not None:
        observers.append(gtg.observe)
    skipped = detection_unsupported_reason(cfg)
    detector = FreeRiderDetector() if skipped is None else None
    if detector is not None:
        observers.append(detector.observe)
    if observers:
        result = run_observed(cfg, prep, observers, full_round)
    else:
        result = run_federation(cfg, prepared=prep, on_round=full_round)
    if saved is not None:
        require_reproduced(result.weights, saved)
    full = Validator(prep.model, prep.pooled_test, metric)(result.weights)
    out: dict[str, Any] = {
        "run": cfg.name,
        "metric": metric,
        "validation": "pooled test set (union of the sites' test splits)",
        "validation_n": len(fed.test),
        "sites": fed.site_names,
        "full": full,
        "reproduces_run": True if saved is not None else None,
    }
    if gtg is not None:
        values = gtg.totals(fed.site_names)
        out["shapley"] = {
            "method": "gtg (round-wise reconstruction)",
            "settings": asdict(settings),
            "values": values,
            "sum": float(sum(values.values())),
            "round_gain_sum": float(sum(r.utility_all - r.utility_empty for r in gtg.rounds)),
            "rounds": [asdict(r) for r in gtg.rounds],
        }
    if method in ("loo", "both"):
        out["loo"] = leave_one_out(cfg, fed, full, metric, on_round)
    out["free_riders"] = detector.summary() if detector is not None else {"skipped": skipped}
    out["shares"] = shares_entry(out, flagged_sites(out["free_riders"]))
    if noise_orders:
        out["site_order_noise"] = site_order_noise(cfg, fed, metric, noise_orders, on_round)
    out["wall_s"] = time.perf_counter() - start
    return out


def score_run_dir(
    run_dir: Path,
    method: Method = "both",
    metric: Metric = "accuracy",
    settings: GTGSettings | None = None,
    on_round: PhaseCallback | None = None,
    noise_orders: int = 0,
) -> Path:
    """Score the run in ``run_dir`` and write ``run_dir/contribution.json``; return its path."""
    config = run_dir / "config.yaml"
    if not config.exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory: no config.yaml")
    cfg = load_config(config)
    check_ledger_writable(run_dir)
    torch.set_num_threads(cfg.threads)
    scores = contribution_scores(
        cfg, method, metric, settings, run_dir=run_dir, on_round=on_round, noise_orders=noise_orders
    )
    path = run_dir / CONTRIBUTION_FILE
    path.write_text(json.dumps(scores, indent=2))
    record_free_riders(run_dir, cfg.name, scores["free_riders"].get("flags", []))
    return path


def load_scores(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``contribution.json``, or ``None`` when it has none."""
    path = Path(run_dir) / CONTRIBUTION_FILE
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data
