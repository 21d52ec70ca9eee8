"""Reference points for every federated result: pooled (centralised) and local-only training.

Both use the same training loop and the same per-round step budget as the federation, but
keep one optimiser running across "rounds" (a round here is just an evaluation checkpoint),
as a real centralised or single-hospital training run would.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from medsilo.config import RunConfig
from medsilo.models.builder import build_model
from medsilo.models.weights import get_weights, set_weights
from medsilo.runtime.clinical import ClinicalMetrics
from medsilo.runtime.federation import FederationResult
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.records import evaluate_weights, evaluation_fields
from medsilo.runtime.round_record import RoundCallback, RoundFields, RoundRecord
from medsilo.runtime.rounds import site_seed
from medsilo.training.local import LocalStats, make_optimizer, train_local
from medsilo.training.samples import BatchSampler, Samples
from medsilo.training.site_samples import samples_of
from medsilo.types import Weights


class _ContinuousTrainer:
    """One model trained in chunks of ``steps_per_round`` with a persistent optimiser."""

    def __init__(self, cfg: RunConfig, prep: PreparedFederation, data: Samples, stream: int):
        self.cfg = cfg
        self.local = cfg.training.local()
        self.data = data
        fed = prep.fed
        self.model = build_model(
            cfg.model, fed.input_shape, fed.num_classes, task=fed.task, seed=cfg.seed
        )
        set_weights(self.model, prep.initial_weights)
        self.optimizer = make_optimizer(self.model, self.local)
        self.generator = torch.Generator().manual_seed(site_seed(cfg.seed, 0, stream))
        self.sampler = BatchSampler(len(data), self.local.batch_size, self.generator)

    def train_round(self) -> LocalStats:
        return train_local(
            self.model,
            self.data,
            self.local,
            self.generator,
            optimizer=self.optimizer,
            sampler=self.sampler,
        )

    def weights(self) -> Weights:
        return get_weights(self.model)


def run_baseline(
    cfg: RunConfig, prep: PreparedFederation, on_round: RoundCallback | None
) -> FederationResult:
    names = prep.fed.site_names
    if cfg.algorithm.name == "pooled":
        pooled = samples_of(prep.fed.pooled_train(), prep.fed.task, cfg.training.loader_workers)
        trainers = {"pooled": _ContinuousTrainer(cfg, prep, pooled, stream=0)}
    else:
        trainers = {
            n: _ContinuousTrainer(cfg, prep, prep.train[n], stream=i + 1)
            for i, n in enumerate(names)
        }
    records: list[RoundRecord] = []
    start = time.perf_counter()
    for rnd in range(1, cfg.training.rounds + 1):
        t0 = time.perf_counter()
        stats = {k: t.train_round() for k, t in trainers.items()}
        fields: RoundFields = {
            "round": rnd,
            "sites": names,
            "train_loss": float(np.mean([s.mean_loss for s in stats.values()])),
            "bytes_up": 0,
            "bytes_down": 0,
            "sim_time_s": None,
            "extra": {},
        }
        if rnd % cfg.evaluation.every == 0 or rnd == cfg.training.rounds:
            fields.update(_evaluate(cfg, prep, trainers, rnd == cfg.training.rounds))
        fields["wall_s"] = time.perf_counter() - t0
        record = RoundRecord.from_fields(fields)
        records.append(record)
        if on_round is not None:
            on_round(record)
    site_weights = _site_weights(trainers, names)
    final = trainers["pooled"].weights() if "pooled" in trainers else site_weights[names[0]]
    return FederationResult(
        weights=final,
        rounds=records,
        site_weights=site_weights,
        wall_s=time.perf_counter() - start,
    )


def _site_weights(trainers: dict[str, _ContinuousTrainer], names: list[str]) -> dict[str, Weights]:
    if "pooled" in trainers:
        w = trainers["pooled"].weights()
        return {n: w for n in names}
    return {n: trainers[n].weights() for n in names}


def _evaluate(
    cfg: RunConfig, prep: PreparedFederation, trainers: dict[str, _ContinuousTrainer], last: bool
) -> RoundFields:
    names = prep.fed.site_names
    site_weights = _site_weights(trainers, names)
    fields = evaluation_fields(
        prep.model, site_weights[names[0]], site_weights, prep.pooled_test, prep.test
    )
    clinical = ClinicalMetrics.of(cfg, prep.fed.task)
    if clinical is not None:  # pooled: the one model; local: each hospital's own model
        reports = {n: clinical.report_for(prep, n, site_weights[n], last) for n in names}
        fields |= clinical.fields(reports)
    if "pooled" in trainers:
        return fields
    # Local-only has no single global model: report the mean pooled-test performance of
    # the sites' own models (how well a random hospital's model serves everyone).
    pooled = [evaluate_weights(prep.model, site_weights[n], prep.pooled_test) for n in names]
    fields["test"] = {
        "loss": float(np.mean([p.loss for p in pooled])),
        "accuracy": float(np.mean([p.accuracy for p in pooled])),
        "n": pooled[0].n,
    }
    return fields
