"""Run a configured experiment and keep everything it produces in a run directory.

Each round's record is appended and flushed to ``rounds.jsonl`` as soon as it exists, so a
crash or a Ctrl-C mid-run still leaves every completed round on disk.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medsilo.config import RunConfig, dump_config
from medsilo.data.base import ArrayData, FederatedData
from medsilo.data.registry import build_federation
from medsilo.governance.checkpoint import Checkpoint, CheckpointWriter
from medsilo.ledger.run_ledger import RunLedger
from medsilo.models.weights import set_weights
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.records import RoundRecord
from medsilo.runtime.simulation import FederationResult, run_federation
from medsilo.tracking.sinks import start_tracking
from medsilo.training.evaluate import evaluate
from medsilo.training.tensors import TensorData


@dataclass
class ExperimentResult:
    run_dir: Path
    summary: dict[str, Any]
    result: FederationResult


def new_run_dir(base: Path, name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = base / f"{name}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = base / f"{name}-{stamp}-{suffix}"
    return path


def json_default(value: object) -> object:
    """``json.dumps(default=...)`` for the numpy scalars metrics are often made of."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def leave_one_hospital_out(
    cfg: RunConfig,
    fed: FederatedData,
    on_site: Callable[[str], None] | None = None,
) -> dict[str, dict[str, float | int]]:
    """Train without each hospital in turn and test on that unseen hospital's whole data."""
    if cfg.algorithm.name == "local":
        raise ValueError("leave-one-hospital-out needs a shared model; 'local' has none")
    if len(fed.sites) < 2:
        raise ValueError("leave-one-hospital-out needs at least two sites")
    out: dict[str, dict[str, float | int]] = {}
    for site in fed.sites:
        prep = PreparedFederation.build(cfg, fed.without(site.name))
        held_out = cfg.model_copy(
            update={
                "sites": cfg.sites.without(site.name),
                "governance": cfg.governance.without(site.name),
            }
        )
        result = run_federation(held_out, prepared=prep)
        unseen = TensorData.of(ArrayData.concat([site.train, site.test]), fed.task == "binary")
        set_weights(prep.model, result.weights)
        out[site.name] = evaluate(prep.model, unseen).as_dict()
        if on_site is not None:
            on_site(site.name)
    return out


def run_experiment(
    cfg: RunConfig,
    run_dir: Path | None = None,
    on_round: Callable[[RoundRecord], None] | None = None,
    on_loho_site: Callable[[str], None] | None = None,
    resume: Checkpoint | None = None,
    prior_rounds: list[RoundRecord] | None = None,
) -> ExperimentResult:
    """Run ``cfg`` into ``run_dir``; with ``resume``, continue after that checkpoint's round,
    ``prior_rounds`` being the records of the rounds before it (docs/governance.md)."""
    torch.set_num_threads(cfg.threads)
    run_dir = run_dir or new_run_dir(cfg.output_dir, cfg.name)
    run_dir.mkdir(parents=True, exist_ok=False)
    (run_dir / "config.yaml").write_text(dump_config(cfg))
    fed = build_federation(cfg.data, cfg.seed)
    if cfg.data.dicom is not None:  # what ingestion left out, per site (docs/data-ingestion.md)
        from medsilo.data.dicom_site import copy_ingestion_reports

        copy_ingestion_reports(cfg.data.dicom, run_dir / "data")
    if cfg.data.tabular is not None:  # each site's validation report, as above
        from medsilo.data.tabular_sites import write_validation_reports

        write_validation_reports(cfg.data.tabular, run_dir / "data")
    ledger = RunLedger(run_dir, cfg, fed.site_names, resume)  # docs/audit-ledger.md
    start = time.perf_counter()
    checkpoints = None
    if cfg.governance.checkpoint is not None:  # per-round engine state (docs/governance.md)
        checkpoints = CheckpointWriter(run_dir / "checkpoints", cfg, cfg.governance.checkpoint)
    prior = list(prior_rounds or [])
    tracking = start_tracking(cfg, run_dir, fed.site_names, prior)  # docs/tracking.md
    with (run_dir / "rounds.jsonl").open("w") as log:
        for rec in prior:
            log.write(json.dumps(rec, default=json_default) + "\n")

        def record(rec: RoundRecord) -> None:
            # Durable (fsync, ledger) before the loop writes the round's checkpoint.
            log.write(json.dumps(rec, default=json_default) + "\n")
            log.flush()
            os.fsync(log.fileno())
            ledger.round(rec)
            tracking.round(rec)
            if on_round is not None:
                on_round(rec)

        result = run_federation(cfg, fed, on_round=record, checkpoints=checkpoints, resume=resume)
    result.rounds = prior + result.rounds
    last = result.rounds[-1]
    summary: dict[str, Any] = {
        "name": cfg.name,
        "algorithm": cfg.algorithm.name,
        "server_optimizer": cfg.server_optimizer.name,
        "dataset": cfg.data.dataset,
        "partition": cfg.data.partition,
        "sites": fed.site_names,
        "seed": cfg.seed,
        "rounds": cfg.training.rounds,
        "final": {k: last.get(k) for k in ("test", "per_site", "mean_site_accuracy")},
        "bytes_up_total": sum(r["bytes_up"] for r in result.rounds),
        "bytes_down_total": sum(r["bytes_down"] for r in result.rounds),
        "asynchrony": cfg.asynchrony.mode,
        "sim_clock_s": last.get("sim_clock_s"),
    }
    if "privacy" in last:  # docs/privacy.md: epsilon spent, and why training stopped early
        summary["privacy"] = last["privacy"]
        summary["rounds_completed"] = len(result.rounds)
        summary["stop_reason"] = last.get("stop_reason")
    if cfg.evaluation.loho:
        loho = leave_one_hospital_out(cfg, fed, on_loho_site)
        summary["loho"] = loho
        summary["loho_mean_accuracy"] = float(np.mean([v["accuracy"] for v in loho.values()]))
    summary["wall_s"] = time.perf_counter() - start
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=json_default))
    np.savez(run_dir / "final_weights.npz", *result.weights)
    ledger.end(result.weights, last)
    tracking.end(summary, last)
    return ExperimentResult(run_dir, summary, result)
