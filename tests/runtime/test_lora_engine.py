"""A LoRA federation in the in-process engine: adapters (and the head) are all that trains,
travels and is counted; every algorithm and channel feature that touches the update works
on them; the frozen backbone ends as it started."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from medsilo.config import RunConfig, parse_config
from medsilo.models.weights import Layout
from medsilo.runtime.federation import FederationResult
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.records import evaluate_weights
from medsilo.runtime.simulation import run_federation

LORA = {"r": 2, "alpha": 4}


def mnist_config(lora: dict[str, Any] | None = LORA, **sections: Any) -> RunConfig:
    model: dict[str, Any] = {"name": "cnn"} | ({"lora": lora} if lora is not None else {})
    raw: dict[str, Any] = {
        "name": "lora-t",
        "seed": 0,
        "data": {
            "dataset": "mnist",
            "partition": "iid",
            "num_sites": 3,
            "max_train_samples": 600,
            "max_test_samples": 300,
        },
        "model": model,
        "training": {"rounds": 3, "local_steps": 10, "batch_size": 16, "lr": 0.3},
        "evaluation": {"bootstrap_replicates": 0},
    }
    return parse_config(raw | sections)


def frozen_state(prep: PreparedFederation) -> dict[str, torch.Tensor]:
    sent = set(prep.layout.names)
    return {n: t.clone() for n, t in prep.model.state_dict().items() if n not in sent}


def run(cfg: RunConfig) -> tuple[PreparedFederation, dict[str, torch.Tensor], FederationResult]:
    prep = PreparedFederation.build(cfg)
    frozen = frozen_state(prep)
    return prep, frozen, run_federation(cfg, prepared=prep)


def assert_backbone_unchanged(prep: PreparedFederation, frozen: dict[str, torch.Tensor]) -> None:
    state = prep.model.state_dict()
    assert frozen and all(torch.equal(state[n], t) for n, t in frozen.items())


@pytest.fixture(scope="module")
def fedavg() -> tuple[PreparedFederation, dict[str, torch.Tensor], FederationResult]:
    return run(mnist_config())


def test_only_adapters_and_head_travel(
    fedavg: tuple[PreparedFederation, dict[str, torch.Tensor], FederationResult],
) -> None:
    prep, frozen, result = fedavg
    assert all(".lora_" in n or ".modules_to_save." in n for n in prep.layout.names)
    assert [w.shape for w in result.weights] == [w.shape for w in prep.initial_weights]
    assert not any(".base_layer." in n or "original_module" in n for n in prep.layout.names)
    assert_backbone_unchanged(prep, frozen)


def test_lora_bytes_per_round_are_a_fraction_of_full_fine_tuning(
    fedavg: tuple[PreparedFederation, dict[str, torch.Tensor], FederationResult],
) -> None:
    _, _, lora = fedavg
    full = run_federation(
        mnist_config(lora=None).with_overrides(
            training={"rounds": 1, "local_steps": 1, "batch_size": 16, "lr": 0.1}
        )
    )
    # the adapters' exact zeros (B starts at zero) vary by round, and the wire pays for them
    assert max(r.bytes_up for r in lora.rounds) * 10 < full.rounds[0].bytes_up
    assert lora.rounds[0].bytes_down * 10 < full.rounds[0].bytes_down


def test_lora_training_improves_accuracy(
    fedavg: tuple[PreparedFederation, dict[str, torch.Tensor], FederationResult],
) -> None:
    prep, _, result = fedavg
    start = evaluate_weights(prep.model, prep.initial_weights, prep.pooled_test).accuracy
    accuracies = [r.test.accuracy for r in result.rounds]
    assert all(a is not None for a in accuracies)
    assert accuracies[-1] > start + 0.1, (start, accuracies)


@pytest.mark.parametrize(
    "sections",
    [
        {"algorithm": {"name": "fedprox", "mu": 0.1}},
        {"algorithm": {"name": "scaffold"}},
        {"algorithm": {"name": "fednova"}},
        {"algorithm": {"name": "ditto", "lam": 0.1}},
        {"algorithm": {"name": "ccpgd", "lam": 0.01, "mu": 0.0005}},
        {"compression": {"codec": "topk", "k": 0.1}},
        {"compression": {"codec": "powersgd", "rank": 2}},
        {"secure_aggregation": {"enabled": True}},
    ],
    ids=[
        "fedprox",
        "scaffold",
        "fednova",
        "ditto",
        "ccpgd",
        "topk",
        "powersgd",
        "secure_aggregation",
    ],
)
def test_algorithms_and_channels_work_on_adapters(
    sections: dict[str, Any],
    fedavg: tuple[PreparedFederation, dict[str, torch.Tensor], FederationResult],
) -> None:
    prep, frozen, result = run(mnist_config(**sections))
    assert_backbone_unchanged(prep, frozen)
    assert all(np.isfinite(w).all() for w in result.weights)
    start = evaluate_weights(prep.model, prep.initial_weights, prep.pooled_test).accuracy
    assert result.rounds[-1].test.accuracy > start
    plain = fedavg[2]
    if "compression" in sections:  # top-k sends a tenth; PowerSGD factors of rank 2 save less
        factor = 3 if sections["compression"]["codec"] == "topk" else 1
        assert result.rounds[0].bytes_up * factor < plain.rounds[0].bytes_up
    if "secure_aggregation" in sections:  # masked fixed-point sums: FedAvg up to rounding
        for got, want in zip(result.weights, plain.weights, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-3)


def test_fedprox_pulls_only_the_trainable_parameters() -> None:
    from medsilo.algorithms.base import trainable_pairs

    prep = PreparedFederation.build(mnist_config())
    pairs = trainable_pairs(prep.model, prep.layout, prep.initial_weights)
    trainable = [p for p in prep.model.parameters() if p.requires_grad]
    assert len(pairs) == len(trainable) == len(prep.layout.names)
    assert all(p is q for (p, _), q in zip(pairs, trainable, strict=True))


def test_dp_sgd_trains_the_adapters() -> None:
    privacy = {"dp_sgd": {"noise_multiplier": 0.5, "max_grad_norm": 1.0}}
    prep, frozen, result = run(mnist_config(privacy=privacy))
    assert_backbone_unchanged(prep, frozen)
    start = evaluate_weights(prep.model, prep.initial_weights, prep.pooled_test).accuracy
    assert result.rounds[-1].test.accuracy > start
    assert Layout.of(prep.model).names == prep.layout.names
