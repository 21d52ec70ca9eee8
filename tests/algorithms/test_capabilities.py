"""Compatibility refusals come from each algorithm's declared capabilities, in one place."""

from __future__ import annotations

import typing
from typing import Any, ClassVar

import numpy as np
import pytest

from medsilo.algorithms.base import Algorithm, SiteTask
from medsilo.algorithms.capabilities import Capabilities
from medsilo.algorithms.fedavg import FedAvg
from medsilo.algorithms.registry import ALGORITHM_CLASSES
from medsilo.config import BASELINES, AlgorithmConfig, ConfigError
from medsilo.runtime.factory import build_run_algorithm, refuse_incompatible
from medsilo.runtime.simulation import run_federation
from medsilo.types import Update, Weights

from ..conftest import small_config, synthetic_federation


class OwnAggregation(Algorithm):
    """An algorithm written outside the package: FedAvg's sites, a coordinator half that
    is not the weighted mean (it takes the first update), and no asynchrony or secure
    aggregation."""

    name: ClassVar[str] = "own_aggregation"
    capabilities = Capabilities(
        aggregation="custom",
        asynchrony_unsound="it keeps the first update of a round, and asynchrony has none",
        secure_aggregation=False,
    )

    def local_update(
        self, task: SiteTask, global_weights: Weights, payload: dict[str, Weights]
    ) -> Update:
        return FedAvg().local_update(task, global_weights, payload)

    def aggregate(
        self,
        global_weights: Weights,
        updates: list[Update],
        server_state: dict[str, Weights],
        layout: Any,
        num_sites: int,
    ) -> tuple[Weights, dict[str, Weights]]:
        return updates[0].delta, server_state


class PlainMean(FedAvg):
    """Outside the package too, declaring the default capabilities (the weighted mean)."""

    name: ClassVar[str] = "plain_mean"


def test_every_configurable_algorithm_is_registered_with_its_capabilities() -> None:
    union = typing.get_args(typing.get_args(AlgorithmConfig)[0])
    names = {typing.get_args(cls.model_fields["name"].annotation)[0] for cls in union}
    assert names - set(BASELINES) == set(ALGORITHM_CLASSES)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"robust": {"rule": "trimmed_mean"}},
            "robust.rule 'trimmed_mean' replaces the weighted mean of the deltas, but "
            "algorithm 'own_aggregation' aggregates its own way",
        ),
        (
            {"asynchrony": {"mode": "fedbuff", "buffer_size": 2}},
            "asynchrony.mode 'fedbuff' cannot run algorithm 'own_aggregation': it keeps the "
            "first update",
        ),
        (
            {"secure_aggregation": {"enabled": True}},
            "secure_aggregation reveals only the weighted sum of the deltas, but algorithm "
            "'own_aggregation' needs more; use one of fedavg, fedprox, ccpgd, fedbn, dp_fedavg",
        ),
        (
            {"privacy": {"dp_sgd": {}}},
            "privacy.dp_sgd replaces the local SGD of fedavg or fedprox; algorithm "
            "'own_aggregation' is not supported",
        ),
    ],
)
def test_an_algorithm_outside_the_package_is_refused_from_its_declaration(
    overrides: dict[str, Any], message: str
) -> None:
    cfg = small_config(**overrides)  # fedavg allows all of these
    with pytest.raises(ValueError) as err:
        refuse_incompatible(cfg, OwnAggregation())
    assert str(err.value).startswith(message)
    refuse_incompatible(cfg, FedAvg())  # what FedAvg declares allows every one of them
    if "robust" in overrides or "secure_aggregation" in overrides:
        refuse_incompatible(cfg, PlainMean())  # the default declaration allows both


def test_the_round_refuses_a_coordinate_wise_rule_for_a_custom_aggregation() -> None:
    """Refused when the run starts (run_federation checks an algorithm passed in as config
    validation checks a named one), with the same message."""
    cfg = small_config(robust={"rule": "median"}, training={**_training(), "rounds": 1})
    fed = synthetic_federation(num_sites=3)
    with pytest.raises(ValueError, match="algorithm 'own_aggregation' aggregates its own way"):
        run_federation(cfg, fed, algorithm=OwnAggregation())
    result = run_federation(cfg, fed, algorithm=PlainMean())
    assert np.isfinite(result.rounds[-1]["test"]["loss"])


def _training() -> dict[str, Any]:
    return {"local_steps": 2, "batch_size": 8, "lr": 0.1}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"algorithm": {"name": "scaffold"}, "training": {**_training(), "optimizer": "adam"}},
            "algorithm 'scaffold' assumes plain local SGD; set training.optimizer: sgd",
        ),
        (
            {"algorithm": {"name": "ccpgd"}, "training": {**_training(), "momentum": 0.9}},
            "algorithm 'ccpgd' takes proximal SGD steps; set training.momentum: 0",
        ),
        ({"algorithm": {"name": "fedbn"}}, "algorithm 'fedbn' needs a model with BatchNorm"),
        (
            {"algorithm": {"name": "fednova"}, "robust": {"rule": "median"}},
            "algorithm 'fednova' aggregates its own way",
        ),
        (
            {"algorithm": {"name": "ditto"}, "asynchrony": {"mode": "fedasync"}},
            "asynchrony.mode 'fedasync' cannot run algorithm 'ditto': Ditto's personal models",
        ),
        (
            {"algorithm": {"name": "scaffold"}, "secure_aggregation": {"enabled": True}},
            "algorithm 'scaffold' needs more",
        ),
        (
            {"algorithm": {"name": "ditto"}, "privacy": {"dp_sgd": {}}},
            "algorithm 'ditto' is not supported",
        ),
        (
            {"algorithm": {"name": "scaffold"}, "privacy": {"client_dp": {}}},
            "privacy.client_dp cannot wrap algorithm 'scaffold': each site also sends its "
            "control-variate change",
        ),
        (
            {"algorithm": {"name": "fednova"}, "privacy": {"client_dp": {}}},
            "privacy.client_dp cannot wrap algorithm 'fednova'",
        ),
        (
            {"algorithm": {"name": "dp_fedavg"}, "privacy": {"client_dp": {}}},
            "algorithm 'dp_fedavg' is FedAvg with client-level DP already",
        ),
        (
            {"algorithm": {"name": "fedprox"}, "privacy": {"client_dp": {}, "dp_sgd": {}}},
            "privacy.dp_sgd (sample-level) and privacy.client_dp (client-level) are accounted "
            "separately",
        ),
        (
            {
                "algorithm": {"name": "fedprox"},
                "privacy": {"client_dp": {}},
                "robust": {"rule": "median"},
            },
            "algorithm 'fedprox' aggregates its own way",
        ),
        (
            {
                "algorithm": {"name": "ditto"},
                "privacy": {"client_dp": {}},
                "secure_aggregation": {"enabled": True},
            },
            "algorithm 'ditto' needs more",
        ),
        (
            {
                "algorithm": {"name": "fedprox"},
                "privacy": {"client_dp": {}},
                "asynchrony": {"mode": "fedasync"},
            },
            "privacy.client_dp around algorithm 'fedprox' cannot run with asynchrony.mode "
            "'fedasync'",
        ),
        (
            {"algorithm": {"name": "pooled"}, "privacy": {"client_dp": {}}},
            "baseline 'pooled' exchanges no updates; remove privacy.client_dp",
        ),
        (
            {
                "algorithm": {"name": "fedprox"},
                "privacy": {"client_dp": {"noise_multiplier": "auto"}},
            },
            "noise_multiplier 'auto' calibrates to a budget",
        ),
    ],
)
def test_package_algorithms_are_refused_from_their_declarations(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        small_config(**overrides)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"algorithm": {"name": "fedprox"}, "privacy": {"client_dp": {}}},
        {"algorithm": {"name": "ditto"}, "privacy": {"client_dp": {"noise": "local"}}},
        {
            "algorithm": {"name": "fedprox"},
            "privacy": {"client_dp": {}},
            "secure_aggregation": {"enabled": True},
        },
        {
            "algorithm": {"name": "fedprox"},
            "privacy": {"client_dp": {}},
            "asynchrony": {"mode": "fedbuff", "buffer_size": 2},
        },
    ],
)
def test_client_dp_wraps_what_its_capabilities_allow(overrides: dict[str, Any]) -> None:
    cfg = small_config(**overrides)
    algorithm = build_run_algorithm(cfg, 4)
    assert algorithm.capabilities.aggregation == "equal_mean"
    assert (
        algorithm.capabilities.checkpoints
        == build_run_algorithm(
            small_config(**{k: v for k, v in overrides.items() if k != "privacy"}), 4
        ).capabilities.checkpoints
    )  # the inner algorithm's
