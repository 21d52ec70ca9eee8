"""Each algorithm's site and coordinator halves, on tiny synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsilo.algorithms.base import Algorithm, SiteTask
from medsilo.algorithms.ditto import Ditto
from medsilo.algorithms.fedavg import FedAvg
from medsilo.algorithms.fedbn import FedBN
from medsilo.algorithms.fednova import FedNova, effective_steps
from medsilo.algorithms.fedprox import FedProx
from medsilo.algorithms.scaffold import Scaffold
from medsilo.data.base import FederatedData
from medsilo.models.builder import build_model
from medsilo.models.weights import Layout, get_weights
from medsilo.training.local import LocalTraining
from medsilo.training.tensors import TensorData
from medsilo.types import Update, global_norm, weighted_mean

from ..conftest import synthetic_federation

SGD = LocalTraining(batch_size=8, lr=0.1, local_steps=20)


def task_for(
    fed: FederatedData,
    i: int,
    training: LocalTraining = SGD,
    model: str = "logistic",
    state: dict | None = None,
) -> SiteTask:
    m = build_model(model, fed.input_shape, fed.num_classes, seed=0)
    return SiteTask(
        site=fed.sites[i].name,
        round=1,
        model=m,
        layout=Layout.of(m),
        data=TensorData.of(fed.sites[i].train, fed.task),
        training=training,
        generator=torch.Generator().manual_seed(i),
        state=state if state is not None else {},
    )


def initial(fed: FederatedData, model: str = "logistic") -> list[np.ndarray]:
    return get_weights(build_model(model, fed.input_shape, fed.num_classes, seed=0))


def one_round(
    algo: Algorithm,
    fed: FederatedData,
    weights: list[np.ndarray],
    states: list[dict],
    training: LocalTraining = SGD,
    model: str = "logistic",
    server_state: dict | None = None,
) -> tuple[list[np.ndarray], list[Update], dict]:
    layout = Layout.of(build_model(model, fed.input_shape, fed.num_classes))
    server_state = (
        server_state if server_state is not None else algo.init_server_state(weights, layout)
    )
    payload = algo.broadcast(server_state)
    updates = [
        algo.local_update(task_for(fed, i, training, model, states[i]), weights, payload)
        for i in range(len(fed.sites))
    ]
    delta, server_state = algo.aggregate(weights, updates, server_state, layout, len(fed.sites))
    return [w + d for w, d in zip(weights, delta, strict=True)], updates, server_state


def test_fedavg_update_is_local_minus_global_and_aggregate_is_sample_weighted() -> None:
    fed = synthetic_federation(num_sites=2)
    w0 = initial(fed)
    new, updates, _ = one_round(FedAvg(), fed, w0, [{}, {}])
    expected = weighted_mean([u.delta for u in updates], [u.num_examples for u in updates])
    for a, b, c in zip(new, w0, expected, strict=True):
        np.testing.assert_allclose(a - b, c, rtol=1e-5, atol=1e-7)
    assert all(u.num_steps == 20 and u.metrics["train_loss"] > 0 for u in updates)


def test_fedavg_single_step_single_site_equals_one_sgd_step() -> None:
    fed = synthetic_federation(num_sites=1, n=40)
    cfg = LocalTraining(batch_size=1000, lr=0.5, local_steps=1)  # full batch
    w0 = initial(fed)
    t = task_for(fed, 0, cfg)
    update = FedAvg().local_update(t, w0, {})
    model = build_model("logistic", fed.input_shape, 2, seed=0)
    data = TensorData.of(fed.sites[0].train, "binary")
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(data.x).squeeze(1), data.y)
    loss.backward()
    grads = [p.grad.numpy() for p in model.parameters()]
    for d, g in zip(update.delta, grads, strict=True):
        np.testing.assert_allclose(d, -0.5 * g, rtol=1e-4, atol=1e-6)


def test_fedprox_large_mu_keeps_update_small() -> None:
    fed = synthetic_federation(num_sites=1)
    w0 = initial(fed)
    free = FedAvg().local_update(task_for(fed, 0), w0, {})
    tight = FedProx(mu=5.0).local_update(task_for(fed, 0), w0, {})
    assert global_norm(tight.delta) < 0.6 * global_norm(free.delta)
    zero = FedProx(mu=0.0).local_update(task_for(fed, 0), w0, {})
    for a, b in zip(free.delta, zero.delta, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_scaffold_control_variates_follow_option_two() -> None:
    fed = synthetic_federation(num_sites=2)
    w0 = initial(fed)
    states: list[dict] = [{}, {}]
    algo = Scaffold()
    new, updates, server = one_round(algo, fed, w0, states)
    for st, u in zip(states, updates, strict=True):
        # c_i+ = c_i - c + (x - y_i) / (K lr) with c = c_i = 0 in round one
        expected = [-d / (20 * 0.1) for d in u.delta]
        for a, b in zip(st["c"], expected, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    mean_c = weighted_mean([s["c"] for s in states], [1.0, 1.0])
    for a, b in zip(server["c"], mean_c, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # round two uses the corrections and still trains
    _, updates2, _ = one_round(algo, fed, new, states, server_state=server)
    assert all(np.isfinite(u.metrics["train_loss"]) for u in updates2)


def test_fednova_equals_fedavg_when_steps_are_equal() -> None:
    fed = synthetic_federation(num_sites=3)
    w0 = initial(fed)
    avg, _, _ = one_round(FedAvg(), fed, w0, [{}, {}, {}])
    nova, _, _ = one_round(FedNova(), fed, w0, [{}, {}, {}])
    for a, b in zip(avg, nova, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_fednova_normalises_unequal_local_work() -> None:
    fed = synthetic_federation(num_sites=2, n=200)
    fed.sites[1] = type(fed.sites[1])(
        fed.sites[1].name, fed.sites[1].train.subset(np.arange(30)), fed.sites[1].test
    )
    epochs = LocalTraining(batch_size=10, lr=0.05, local_epochs=1.0)
    w0 = initial(fed)
    _, updates, _ = one_round(FedNova(), fed, w0, [{}, {}], training=epochs)
    assert [u.num_steps for u in updates] == [15, 3]
    assert [u.metrics["a_i"] for u in updates] == [15.0, 3.0]
    # with heavy-ball momentum step k carries weight (1 - rho^k) / (1 - rho)
    rho = 0.9
    explicit = sum((1 - rho**k) / (1 - rho) for k in range(1, 11))
    assert effective_steps(10, rho) == pytest.approx(explicit)


def test_fedbn_keeps_norm_layers_local() -> None:
    from medsilo.data.base import ArrayData, SiteData

    rng = np.random.default_rng(0)
    sites = []
    for i in range(2):
        x = (rng.normal(size=(40, 1, 8, 8)) * (i + 1) + i).astype(np.float32)
        y = rng.integers(0, 3, size=40).astype(np.int64)
        sites.append(SiteData(f"s{i}", ArrayData(x[:30], y[:30]), ArrayData(x[30:], y[30:])))
    fed = FederatedData("img", sites, ArrayData.concat([s.test for s in sites]), 3, "multiclass")
    w0 = initial(fed, "cnn_bn")
    states: list[dict] = [{}, {}]
    cfg = LocalTraining(batch_size=10, lr=0.05, local_steps=5)
    new, updates, _ = one_round(FedBN(), fed, w0, states, training=cfg, model="cnn_bn")
    layout = Layout.of(build_model("cnn_bn", fed.input_shape, 3))
    for i, is_norm in enumerate(layout.norm_layer):
        if is_norm:
            np.testing.assert_array_equal(new[i], w0[i])
            assert all(not u.delta[i].any() for u in updates)
    assert not np.allclose(states[0]["norm"][0], states[1]["norm"][0])
    personal = FedBN().site_weights(new, states[1], layout)
    assert any(not np.allclose(p, g) for p, g in zip(personal, new, strict=True))
    with pytest.raises(ValueError, match="normalisation"):
        FedBN().local_update(task_for(fed, 0, cfg, "cnn"), initial(fed, "cnn"), {})


def test_ditto_personal_model_fits_local_data_better() -> None:
    fed = synthetic_federation(num_sites=2, concept_shift=2.0)
    w = initial(fed)
    states: list[dict] = [{}, {}]
    algo = Ditto(lam=0.01)
    for _ in range(5):
        w, _, _ = one_round(algo, fed, w, states)
    from medsilo.models.weights import set_weights
    from medsilo.training.evaluate import evaluate

    model = build_model("logistic", fed.input_shape, 2)
    layout = Layout.of(model)
    train = TensorData.of(fed.sites[1].train, "binary")
    set_weights(model, w)
    global_loss = evaluate(model, train).loss
    set_weights(model, algo.site_weights(w, states[1], layout))
    personal_loss = evaluate(model, train).loss
    assert personal_loss < global_loss
