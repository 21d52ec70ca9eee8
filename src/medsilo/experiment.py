"""Run a configured experiment and keep everything it produces in a run directory.

Each round's record is appended and flushed to ``rounds.jsonl`` as soon as it exists, so a
crash or a Ctrl-C mid-run still leaves every completed round on disk, and ``summary.json``
is written either way (marked incomplete when the run stopped early, :mod:`medsilo.run_summary`).
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

from medsilo.anchor.run_anchor import open_anchor
from medsilo.config import RunConfig, dump_config
from medsilo.data.base import FederatedData, concat_splits
from medsilo.governance.checkpoint import Checkpoint, CheckpointWriter
from medsilo.governance.record_kinds import DECISION_KIND
from medsilo.governance.run_gate import approved_run
from medsilo.ledger.digest import config_sha256
from medsilo.ledger.engine_witnesses import EngineWitnessing
from medsilo.ledger.run_ledger import RunLedger
from medsilo.models.local_weights import file_sha256
from medsilo.models.weights import set_weights
from medsilo.run_summary import mark_incomplete, run_summary
from medsilo.runtime.clinical import ClinicalMetrics
from medsilo.runtime.preflight import held_out_config, loho_problem, preflight
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.round_record import RoundRecord, json_line
from medsilo.runtime.simulation import FederationResult, run_federation
from medsilo.tracking.sinks import start_tracking
from medsilo.training.evaluate import evaluate
from medsilo.training.site_samples import samples_of


class RunDirError(ValueError):
    """The folder a run or suite would write to is taken (nothing was written)."""


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
    results: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Train without each hospital in turn and test on that unseen hospital's whole data
    (loss and accuracy, and the clinical metrics with their interval at the operating point
    chosen on the other hospitals' training rows).

    Each site's metrics go into ``results`` (a new dict by default) as soon as they exist,
    so a caller interrupted part-way still holds the sites already done."""
    problem = loho_problem(cfg, fed)
    if problem is not None:
        raise ValueError(problem)
    out = results if results is not None else {}
    clinical = ClinicalMetrics.of(cfg, fed.task)
    for site in fed.sites:
        prep = PreparedFederation.build(cfg, fed.without(site.name))
        result = run_federation(held_out_config(cfg, site.name), prepared=prep)
        unseen = samples_of(concat_splits([site.train, site.test]), fed.task)
        set_weights(prep.model, result.weights)
        out[site.name] = evaluate(prep.model, unseen).as_dict()
        if clinical is not None:  # clinical metrics at the unseen hospital
            found = clinical.unseen_hospital(prep, result.weights, site.name, unseen)
            out[site.name] |= {"clinical": found["metrics"]}
            if "intervals" in found:
                out[site.name] |= {"clinical_intervals": found["intervals"]}
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
    ``prior_rounds`` being the records of the rounds before it (docs/governance.md).

    Every check that can run before training (:func:`~medsilo.runtime.preflight.preflight`)
    runs before ``run_dir`` is created, so a config mistake leaves nothing behind. A run
    stopped part-way (an exception or Ctrl-C, in training or in leave-one-hospital-out)
    still writes a ``summary.json`` marked incomplete before the error propagates."""
    torch.set_num_threads(cfg.threads)
    run_dir = run_dir or new_run_dir(cfg.output_dir, cfg.name)
    if run_dir.exists():
        raise RunDirError(f"{run_dir} already exists; a run never overwrites another")
    prepared = preflight(cfg)
    fed = prepared.fed
    weights = cfg.model.weights_path  # read by preflight's model; recorded in summary.json
    weights_sha256 = None if weights is None else file_sha256(weights)
    # The council's approval of this config (docs/governance.md, "Quorum decisions"); a
    # resumed run continues the run its checkpoint came from, approved when it started.
    approval = approved_run(cfg) if resume is None else None
    anchor = open_anchor(cfg.anchor, config_sha256(cfg), fed.site_names, resume is not None)
    decision = approval.consume() if approval is not None else None  # the last check
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(dump_config(cfg))
    ingested = cfg.data.ingestion_reports()  # what ingestion left out, per site
    if ingested is not None:  # (docs/data-ingestion.md, docs/bring-your-own.md)
        from medsilo.data.ingestion_report import copy_ingestion_reports

        copy_ingestion_reports(*ingested, run_dir / "data")
    if cfg.data.tabular is not None:  # each site's validation report, as above
        from medsilo.data.tabular_sites import write_validation_reports

        write_validation_reports(cfg.data.tabular, run_dir / "data")
    ledger = RunLedger(run_dir, cfg, fed.site_names, resume, anchor=anchor)  # docs/audit-ledger.md
    if decision is not None:
        ledger.ledger.append(DECISION_KIND, decision.payload())
    witnessing = (  # asked for: the simulated sites witness the ledger (docs/audit-ledger.md)
        EngineWitnessing.create(run_dir, fed.site_names, ledger.feed)
        if cfg.governance.site_witness
        else None
    )
    start = time.perf_counter()
    checkpoints = None
    if cfg.governance.checkpoint is not None:  # per-round engine state (docs/governance.md)
        checkpoints = CheckpointWriter(run_dir / "checkpoints", cfg, cfg.governance.checkpoint)
    rounds = list(prior_rounds or [])
    tracking = start_tracking(cfg, run_dir, fed.site_names, rounds)  # docs/tracking.md
    loho: dict[str, dict[str, float | int]] = {}
    phase = "training"
    try:
        with (run_dir / "rounds.jsonl").open("w") as log:
            for rec in rounds:
                log.write(json_line(rec))

            def record(rec: RoundRecord) -> None:
                # Durable (fsync, ledger) before the loop writes the round's checkpoint.
                log.write(json_line(rec))
                log.flush()
                os.fsync(log.fileno())
                ledger.round(rec)
                tracking.round(rec)
                rounds.append(rec)
                if on_round is not None:
                    on_round(rec)

            result = run_federation(
                cfg,
                on_round=record,
                prepared=prepared,
                checkpoints=checkpoints,
                resume=resume,
                witnessing=witnessing,
            )
        result.rounds = rounds
        np.savez(run_dir / "final_weights.npz", *result.weights)
        last = rounds[-1] if rounds else None  # LOHO, after this, trains other models:
        ledger.end(result.weights, last, witnessing.sites.countersign if witnessing else None)
        phase = "leave-one-hospital-out"
        if cfg.evaluation.loho:
            leave_one_hospital_out(cfg, fed, on_loho_site, results=loho)
    except BaseException as err:  # Ctrl-C too: keep what is known, then stop as asked
        wall_s = time.perf_counter() - start
        summary = run_summary(cfg, fed.site_names, rounds, loho, wall_s, weights_sha256)
        mark_incomplete(summary, phase, err)
        _write_summary(run_dir, summary)
        raise
    wall_s = time.perf_counter() - start
    summary = run_summary(cfg, fed.site_names, rounds, loho, wall_s, weights_sha256)
    _write_summary(run_dir, summary)
    tracking.end(summary, rounds[-1])
    return ExperimentResult(run_dir, summary, result)


def _write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=json_default))
