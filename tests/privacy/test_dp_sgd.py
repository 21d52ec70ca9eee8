"""Sample-level DP-SGD through Opacus inside FedAvg / FedProx, and its config checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsilo.config import ConfigError
from medsilo.data.base import ArrayData, FederatedData, SiteData
from medsilo.models.builder import build_model
from medsilo.privacy.accountant import epsilon
from medsilo.privacy.dp_sgd import DPSGDPlan, check_model, train_local_dp
from medsilo.runtime.simulation import run_federation
from medsilo.training.local import LocalTraining, TrainHooks
from medsilo.training.tensors import TensorData

from ..conftest import small_config, synthetic_federation

TRAIN = {"rounds": 3, "local_steps": 8, "batch_size": 8, "lr": 0.2}


def test_dp_sgd_trains_and_reports_each_sites_epsilon() -> None:
    fed = synthetic_federation(num_sites=3)
    dp = {"dp_sgd": {"noise_multiplier": 1.0, "max_grad_norm": 1.0}}
    res = run_federation(small_config(training=TRAIN, privacy=dp), fed)
    first, last = res.rounds[0], res.rounds[-1]
    assert last["test"]["accuracy"] > 0.7  # it learns through the noise
    assert first["train_loss"] > last["train_loss"]
    priv = last["privacy"]
    n = {s.name: len(s.train) for s in fed.sites}
    expected = {s: epsilon(1.0, 8 / n[s], 3 * 8, 1e-5) for s in n}
    assert priv["per_site"] == expected and priv["epsilon"] == max(expected.values())
    assert priv["mechanism"] == "dp_sgd" and priv["unit"] == "example"
    plain = run_federation(small_config(training=TRAIN), fed)
    assert not np.allclose(plain.weights[0], res.weights[0])  # DP-SGD did change training


def test_dp_sgd_is_reproducible_and_composes_with_fedprox() -> None:
    fed = synthetic_federation(num_sites=2)
    dp = {"dp_sgd": {"noise_multiplier": "auto"}, "target_epsilon": 2.0}
    cfg = small_config(algorithm={"name": "fedprox", "mu": 0.5}, training=TRAIN, privacy=dp)
    a, b = run_federation(cfg, fed), run_federation(cfg, fed)
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(x, y)
    assert 1.9 < a.rounds[-1]["privacy"]["epsilon"] <= 2.0  # auto: the budget, all rounds


def image_site(n: int = 24) -> TensorData:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 1, 8, 8)).astype(np.float32)
    return TensorData.of(ArrayData(x, (x.mean(axis=(1, 2, 3)) > 0).astype(np.int64)), "multiclass")


def test_opacus_computes_per_example_gradients_for_the_cnn() -> None:
    model = build_model("cnn", (1, 8, 8), 3)
    check_model(model)
    before = [p.detach().clone() for p in model.parameters()]
    plan = DPSGDPlan(max_grad_norm=1.0, noise_multiplier=0.5, delta=1e-5, rounds=1)
    cfg = LocalTraining(batch_size=6, lr=0.1, local_steps=3)
    stats = train_local_dp(
        model, image_site(), cfg, plan, torch.Generator().manual_seed(0), TrainHooks()
    )
    assert stats.steps == 3 and np.isfinite(stats.mean_loss)
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
    assert not any(
        hasattr(p, "grad_sample") and p.grad_sample is not None for p in model.parameters()
    )
    with pytest.raises(ValueError, match="BatchNorm"):
        check_model(build_model("cnn_bn", (1, 8, 8), 3))


def test_empty_poisson_batches_still_take_a_noisy_step() -> None:
    torch.manual_seed(0)
    model = build_model("logistic", (1, 8, 8), 3)
    plan = DPSGDPlan(max_grad_norm=1.0, noise_multiplier=1.0, delta=1e-5, rounds=1)
    cfg = LocalTraining(batch_size=1, lr=0.1, local_steps=40)  # q = 1/24: many empty batches
    before = model.linear.weight.detach().clone()
    forwards: list[int] = []
    model.register_forward_hook(lambda *_: forwards.append(1))
    stats = train_local_dp(
        model, image_site(), cfg, plan, torch.Generator().manual_seed(1), TrainHooks()
    )
    assert stats.steps == 40 and 0 < len(forwards) < 40  # some steps drew no example
    assert not torch.equal(before, model.linear.weight)
    with pytest.raises(ValueError, match="accounted at 40 steps"):
        train_local_dp(model, image_site(), cfg, plan, torch.Generator(), TrainHooks(), steps=5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model": {"name": "cnn_bn"}, "privacy": {"dp_sgd": {}}}, "BatchNorm"),
        ({"algorithm": {"name": "scaffold"}, "privacy": {"dp_sgd": {}}}, "fedavg or fedprox"),
        ({"algorithm": {"name": "dp_fedavg"}, "privacy": {"dp_sgd": {}}}, "choose one"),
        ({"privacy": {"dp_sgd": {"noise_multiplier": "auto"}}}, "set privacy.target_epsilon"),
        ({"algorithm": {"name": "dp_fedavg", "noise_multiplier": "auto"}}, "target_epsilon"),
        ({"privacy": {"target_epsilon": 3.0}}, "no DP mechanism is on"),
        ({"privacy": {"dp_sgd": {"max_grad_norm": 0}}}, "privacy.dp_sgd.max_grad_norm"),
        ({"privacy": {"delta": 1.5}}, "privacy.delta"),
        ({"privacy": {"epsilon": 3}}, "privacy.epsilon"),
        ({"algorithm": {"name": "dp_fedavg", "noise": "edge"}}, "noise"),
        (
            {
                "algorithm": {"name": "dp_fedavg", "adaptive_clip": {}},
                "secure_aggregation": {"enabled": True},
            },
            "unclipped indicator",
        ),
    ],
)
def test_bad_privacy_configs_fail_at_load_time(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        small_config(**overrides)


def test_dp_sgd_trains_the_cnn_in_a_federation() -> None:
    sites = [SiteData(f"s{i}", _arrays(20, i), _arrays(10, 10 + i)) for i in range(2)]
    fed = FederatedData("img", sites, _arrays(10, 99), 2, "binary")
    train = TRAIN | {"rounds": 1, "local_steps": 2}
    cfg = small_config(model={"name": "cnn"}, privacy={"dp_sgd": {}}, training=train)
    res = run_federation(cfg, fed)
    assert set(res.rounds[0]["privacy"]["per_site"]) == {"s0", "s1"}
    assert all(e > 0 for e in res.rounds[0]["privacy"]["per_site"].values())


def _arrays(n: int, seed: int) -> ArrayData:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 1, 8, 8)).astype(np.float32)
    return ArrayData(x, (x.mean(axis=(1, 2, 3)) > 0).astype(np.int64))


def test_with_sampled_cohorts_each_site_pays_only_for_the_rounds_it_trained() -> None:
    fed = synthetic_federation(num_sites=4)
    dp = {"dp_sgd": {"noise_multiplier": 1.0}}
    res = run_federation(small_config(training=TRAIN | {"fraction": 0.5}, privacy=dp), fed)
    n = {s.name: len(s.train) for s in fed.sites}
    trained = dict.fromkeys(n, 0)
    for record in res.rounds:
        for site in record["sites"]:
            trained[site] += 1
        expected = {s: epsilon(1.0, 8 / n[s], trained[s] * 8, 1e-5) for s in n}
        assert record["privacy"]["per_site"] == expected
    assert min(trained.values()) < 3  # some site sat out a round and paid less
