"""The per-round record every runtime emits (one JSON line in ``rounds.jsonl``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from torch import nn

from medsilo.confidential.leakage import leakage_risk, sparsity
from medsilo.models.weights import set_weights
from medsilo.network import NetworkProfile, round_seconds
from medsilo.training.evaluate import EvalResult, evaluate
from medsilo.training.tensors import TensorData
from medsilo.types import Update, Weights
from medsilo.wire import encoded_size

RoundRecord = dict[str, Any]
RoundCallback = Callable[[RoundRecord], None]


def evaluate_weights(model: nn.Module, weights: Weights, data: TensorData) -> EvalResult:
    set_weights(model, weights)
    return evaluate(model, data)


def evaluation_fields(
    model: nn.Module,
    pooled_weights: Weights,
    site_weights: Mapping[str, Weights],
    pooled_test: TensorData,
    site_tests: Mapping[str, TensorData],
) -> dict[str, Any]:
    """Pooled-test metrics of the global model and per-site metrics of each site's model."""
    per_site = {
        name: evaluate_weights(model, site_weights[name], site_tests[name]).as_dict()
        for name in site_tests
    }
    accs = [float(v["accuracy"]) for v in per_site.values() if v["n"]]
    return {
        "test": evaluate_weights(model, pooled_weights, pooled_test).as_dict(),
        "per_site": per_site,
        "mean_site_accuracy": float(np.mean(accs)) if accs else None,
    }


def update_bytes(update: Update) -> int:
    """Bytes a site sends: the wire encoding (:mod:`medsilo.wire`) of its delta and extras."""
    return encoded_size(update.delta) + sum(encoded_size(x) for x in update.extras.values())


def broadcast_bytes(weights: Weights, payload: Mapping[str, Weights]) -> int:
    """Bytes the coordinator sends each site: the global weights and the payload, encoded."""
    return encoded_size(weights) + sum(encoded_size(x) for x in payload.values())


def transmitted_update_metrics(updates: list[Update]) -> dict[str, float]:
    """Round means of leakage risk and sparsity of what the sites sent (same for every
    algorithm, so the comparison is apples to apples)."""
    return {
        "leakage": float(np.mean([leakage_risk(u.delta) for u in updates])),
        "sparsity": float(np.mean([sparsity(u.delta) for u in updates])),
    }


def round_record(
    rnd: int,
    sites: list[str],
    updates: list[Update],
    weights: Weights,
    payload: Mapping[str, Weights],
    networks: Mapping[str, NetworkProfile] | None = None,
) -> RoundRecord:
    """The training part of a round's record; every runtime builds it with this function.

    ``weights`` and ``payload`` are what was broadcast at the start of the round; ``networks``
    maps each site to its link (default profile where missing) for ``sim_time_s``.
    """
    down = broadcast_bytes(weights, payload)
    ups = [update_bytes(u) for u in updates]
    links = networks or {}
    return {
        "round": rnd,
        "sites": sites,
        "train_loss": float(
            np.average(
                [u.metrics["train_loss"] for u in updates],
                weights=[u.num_examples for u in updates],
            )
        ),
        "bytes_up": sum(ups),
        "bytes_down": len(sites) * down,
        "sim_time_s": round_seconds(
            {n: (down, up) for n, up in zip(sites, ups, strict=True)},
            {n: links.get(n, NetworkProfile()) for n in sites},
        ),
        "extra": transmitted_update_metrics(updates),
    }
