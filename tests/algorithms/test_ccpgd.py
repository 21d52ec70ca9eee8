"""CC-PGD: leakage risk, prox, projection, the TEE indicator, convergence; and DP-FedAvg."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from medsilo.algorithms.base import trainable_pairs
from medsilo.algorithms.ccpgd import CCPGD, CCPGDHooks, privacy_penalty
from medsilo.algorithms.dp_fedavg import DPFedAvg, clip_update
from medsilo.algorithms.fedavg import FedAvg
from medsilo.confidential.leakage import leakage_risk, smooth_leakage_risk
from medsilo.models.builder import build_model
from medsilo.models.weights import Layout, get_weights, set_weights
from medsilo.runtime.simulation import run_federation
from medsilo.training.local import LocalTraining, train_local
from medsilo.training.task import task_loss
from medsilo.training.tensors import TensorData
from medsilo.types import Update, global_norm
from medsilo.wire import encoded_size

from ..conftest import small_config, synthetic_federation
from .test_algorithms import initial, task_for

# --- leakage risk ---------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=200),
)
def test_leakage_risk_in_unit_interval(values: list[float]) -> None:
    u = np.array(values, dtype=np.float32)
    r = leakage_risk([u])
    assert 0.0 <= r <= 1.0
    s = float(smooth_leakage_risk(torch.tensor(u, dtype=torch.float64)))
    assert -1e-9 <= s <= 1.0 + 1e-9


def test_leakage_risk_extremes() -> None:
    d = 1000
    uniform = np.where(np.arange(d) % 2 == 0, 0.3, -0.3).astype(np.float32)
    assert leakage_risk([uniform]) == pytest.approx(0.0, abs=1e-9)
    one_hot = np.zeros(d, np.float32)
    one_hot[17] = 5.0
    assert leakage_risk([one_hot]) == pytest.approx(1.0)
    smooth = float(smooth_leakage_risk(torch.tensor(one_hot, dtype=torch.float64), eps=1e-8))
    assert smooth > 0.99
    assert float(smooth_leakage_risk(torch.tensor(uniform))) == pytest.approx(0.0, abs=1e-6)
    # scale invariant: clipping / projection does not change it
    rng = np.random.default_rng(0)
    g = rng.standard_cauchy(d).astype(np.float32)
    assert leakage_risk([g]) == pytest.approx(leakage_risk([0.01 * g]), rel=1e-5)


@pytest.mark.parametrize("kind", ["zero", "one_hot", "gaussian", "tiny"])
def test_penalty_gradient_is_finite(kind: str) -> None:
    rng = np.random.default_rng(1)
    u = {
        "zero": np.zeros(50),
        "one_hot": np.eye(50)[3],
        "gaussian": rng.normal(size=50),
        "tiny": 1e-30 * rng.normal(size=50),
    }[kind]
    for f in (smooth_leakage_risk, privacy_penalty):
        t = torch.tensor(u, dtype=torch.float32, requires_grad=True)
        f(t).backward()  # type: ignore[no-untyped-call]
        assert t.grad is not None and torch.isfinite(t.grad).all()


def test_penalty_gradient_matches_closed_form() -> None:
    # dP/du_j = sign(u_j) * log(d p_j) / log d  (eps -> 0), see docs/ccpgd.md
    rng = np.random.default_rng(2)
    u = torch.tensor(rng.normal(size=40), dtype=torch.float64, requires_grad=True)
    privacy_penalty(u, eps=1e-12).backward()  # type: ignore[no-untyped-call]
    a = u.detach().abs()
    expected = torch.sign(u.detach()) * torch.log(40 * a / a.sum()) / math.log(40)
    assert u.grad is not None
    torch.testing.assert_close(u.grad, expected, rtol=1e-6, atol=1e-8)


# --- projection, prox, indicator ---------------------------------------------------------------


@settings(max_examples=12, deadline=None)
@given(
    rho=st.floats(1e-3, 2.0),
    lr=st.floats(0.01, 1.0),
    lam=st.floats(0.0, 1.0),
    mu=st.floats(0.0, 0.5),
    seed=st.integers(0, 1000),
)
def test_projection_holds_after_every_step(
    rho: float, lr: float, lam: float, mu: float, seed: int
) -> None:
    fed = synthetic_federation(num_sites=1, d=6, classes=3, seed=seed % 7)
    training = LocalTraining(batch_size=8, lr=lr, local_steps=12)
    task = task_for(fed, 0, training, model="mlp")
    w0 = initial(fed, "mlp")
    set_weights(task.model, w0)
    pairs = trainable_pairs(task.model, task.layout, w0)
    hooks = CCPGDHooks(pairs, lam=lam, mu=mu, rho=rho, lr=lr, record=True)
    train_local(task.model, task.data, training, task.generator, hooks)
    assert len(hooks.radii) == 12
    assert max(hooks.radii) <= rho


def test_projection_in_float64_never_exceeds_rho() -> None:
    """The ball is a sensitivity bound: the float32 update, measured in float64, is <= rho."""
    rng = np.random.default_rng(5)
    rho = 0.05
    for trial in range(200):
        shapes = [(int(rng.integers(1, 40)), int(rng.integers(1, 9))), (int(rng.integers(1, 9)),)]
        anchors = [torch.tensor(rng.normal(size=s), dtype=torch.float32) for s in shapes]
        params = [
            torch.nn.Parameter(
                a + torch.tensor(rng.normal(scale=0.1, size=a.shape), dtype=torch.float32)
            )
            for a in anchors
        ]
        pairs = list(zip(params, anchors, strict=True))
        mu = float(rng.choice([0.0, 0.01]))
        hooks = CCPGDHooks(pairs, lam=0.0, mu=mu, rho=rho, lr=0.1)
        hooks.after_step(torch.nn.Module())
        delta = [(p.detach() - a).numpy() for p, a in pairs]  # what make_update transmits
        assert global_norm(delta) <= rho, (trial, global_norm(delta) - rho)
    assert hooks.projected_steps == 1


def test_ccpgd_without_penalties_is_fedavg_bit_for_bit() -> None:
    fed = synthetic_federation(num_sites=3)
    setting: dict[str, object] = {
        "model": {"name": "mlp"},
        "training": {"rounds": 3, "local_steps": 10, "batch_size": 8, "lr": 0.5},
    }
    plain = run_federation(small_config(**setting), fed)
    noop = run_federation(
        small_config(algorithm={"name": "ccpgd", "lam": 0.0, "mu": 0.0, "rho": 1e9}, **setting),
        fed,
    )
    for x, y in zip(plain.weights, noop.weights, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("codec", ["fp16", "int8", "qsgd"])
def test_ccpgd_without_penalties_is_fedavg_with_the_same_codec(codec: str) -> None:
    """CC-PGD composes with the quantising codecs: with lam = mu = 0 and its default ball
    (in place, never active here) it sends exactly FedAvg's bytes and ends on its weights."""
    fed = synthetic_federation(num_sites=3)
    setting: dict[str, object] = {
        "model": {"name": "mlp"},
        "training": {"rounds": 3, "local_steps": 10, "batch_size": 8, "lr": 0.5},
        "compression": {"codec": codec},
    }
    plain = run_federation(small_config(**setting), fed)
    noop = run_federation(
        small_config(algorithm={"name": "ccpgd", "lam": 0.0, "mu": 0.0}, **setting), fed
    )
    for x, y in zip(plain.weights, noop.weights, strict=True):
        np.testing.assert_array_equal(x, y)
    assert [r["bytes_up"] for r in plain.rounds] == [r["bytes_up"] for r in noop.rounds]
    assert all(r["extra"]["projected_share"] == 0.0 for r in noop.rounds)
    assert all("projected_share" not in r["extra"] for r in plain.rounds)


def test_projected_share_is_recorded_when_the_ball_is_active() -> None:
    fed = synthetic_federation(num_sites=2)
    cfg = small_config(
        algorithm={"name": "ccpgd", "lam": 0.0, "mu": 0.0, "rho": 1e-3},
        model={"name": "mlp"},
        training={"rounds": 2, "local_steps": 5, "batch_size": 8, "lr": 0.5},
    )
    shares = [r["extra"]["projected_share"] for r in run_federation(cfg, fed).rounds]
    assert all(0.0 < s <= 1.0 for s in shares)


def test_prox_gives_exact_zeros_and_fewer_bytes() -> None:
    fed = synthetic_federation(num_sites=1, d=40, classes=3)
    w0 = initial(fed)
    dense = CCPGD(lam=0.0, mu=0.0, rho=100.0).local_update(task_for(fed, 0), w0, {})
    sparse = CCPGD(lam=0.0, mu=0.3, rho=100.0).local_update(task_for(fed, 0), w0, {})
    assert dense.metrics["sparsity"] == 0.0
    assert sparse.metrics["sparsity"] > 0.5
    assert sum(int((d == 0).sum()) for d in sparse.delta) > 0
    assert encoded_size(sparse.delta) < encoded_size(dense.delta)


def test_indicator_raises_the_penalty() -> None:
    fed = synthetic_federation(num_sites=1, d=20, classes=3)
    w0 = initial(fed)
    algo = CCPGD(lam=0.05, mu=0.0, kappa=2.0)
    safe, exposed = task_for(fed, 0), task_for(fed, 0)
    exposed.exploit_indicator = 1
    h_safe, h_exposed = algo.hooks_for(safe, w0), algo.hooks_for(exposed, w0)
    assert h_exposed.lam == pytest.approx(3 * h_safe.lam)
    with torch.no_grad():
        for p, _ in h_safe.pairs:
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(0)) * 0.1)
        for (p, _), (q, _) in zip(h_exposed.pairs, h_safe.pairs, strict=True):
            p.copy_(q)
    pen_safe, pen_exposed = h_safe.extra_loss(safe.model), h_exposed.extra_loss(exposed.model)
    assert pen_safe is not None and pen_exposed is not None
    assert float(pen_exposed) == pytest.approx(3 * float(pen_safe)) and float(pen_safe) > 0
    u_safe = algo.local_update(task_for(fed, 0), w0, {})
    t = task_for(fed, 0)
    t.exploit_indicator = 1
    u_exposed = algo.local_update(t, w0, {})
    assert u_exposed.metrics["exploit_indicator"] == 1.0
    assert u_exposed.metrics["leakage"] < u_safe.metrics["leakage"]


def test_more_lambda_less_leakage_than_fedavg() -> None:
    fed = synthetic_federation(num_sites=1, d=30, classes=3)
    w0 = initial(fed)
    fedavg = FedAvg().local_update(task_for(fed, 0), w0, {})
    ccpgd = CCPGD(lam=0.1, mu=0.0, rho=100.0).local_update(task_for(fed, 0), w0, {})
    assert leakage_risk(ccpgd.delta) < leakage_risk(fedavg.delta)


# --- convergence: O(1/sqrt(T)) on a smooth problem --------------------------------------------


class _GradientMapping(CCPGDHooks):
    """Records ||G_t||^2 with G_t = (w_t - w_{t+1}) / lr, the prox-gradient mapping."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.before: list[torch.Tensor] = []
        self.g2: list[float] = []

    def transform_gradients(self, model: torch.nn.Module) -> None:
        self.before = [p.detach().clone() for p, _ in self.pairs]

    def after_step(self, model: torch.nn.Module) -> None:
        super().after_step(model)
        step = sum(
            float(((b - p.detach()) ** 2).sum())
            for b, (p, _) in zip(self.before, self.pairs, strict=True)
        )
        self.g2.append(step / self.lr**2)


def test_convergence_rate_is_consistent_with_one_over_sqrt_t() -> None:
    fed = synthetic_federation(num_sites=1, n=80, d=5, classes=2, seed=3)
    data = TensorData.of(fed.sites[0].train, "binary")
    c, lam, mu, rho, eps = 0.5, 0.01, 0.01, 3.0, 0.05
    products = []
    f0 = None
    for T in (16, 64, 256, 1024):
        model = build_model("logistic", fed.input_shape, 2, seed=0)
        w0 = get_weights(model)
        lr = c / math.sqrt(T)
        cfg = LocalTraining(batch_size=len(data), lr=lr, local_steps=T)  # full batch
        hooks = _GradientMapping(
            trainable_pairs(model, Layout.of(model), w0), lam=lam, mu=mu, rho=rho, lr=lr, eps=eps
        )
        stats = train_local(model, data, cfg, torch.Generator().manual_seed(0), hooks, steps=T)
        assert math.isfinite(stats.mean_loss)
        if f0 is None:
            with torch.no_grad():
                set_weights(model, w0)
                f0 = float(task_loss(model(data.x), data.y, "binary"))
        products.append(math.sqrt(T) * min(hooks.g2))
    # descent lemma for prox-gradient with lr <= 1/L: min_t ||G_t||^2 <= 2 (F(w0) - inf F)/(lr T)
    # and F >= 0, F(w0) = loss(w0), so sqrt(T) * min ||G||^2 <= 2 F(w0) / c for every T.
    assert f0 is not None
    assert all(p <= 2 * f0 / c for p in products), (products, f0)
    assert products[-1] <= products[0] * 1.5


# --- DP-FedAvg ------------------------------------------------------------------------------


def test_dp_fedavg_clips_and_adds_reproducible_noise() -> None:
    rng = np.random.default_rng(0)
    delta = [rng.normal(size=(4, 3)).astype(np.float32) * 10]
    clipped, norm = clip_update(delta, 1.0)
    assert norm > 1 and global_norm(clipped) == pytest.approx(1.0, rel=1e-5)
    small = [np.full((2,), 0.1, np.float32)]
    assert clip_update(small, 1.0)[0][0].tolist() == small[0].tolist()

    ups = [Update(f"s{i}", clip_update(delta, 1.0)[0], 10 * (i + 1), 5) for i in range(4)]
    quiet = DPFedAvg(clip=1.0, noise_multiplier=0.0)
    agg, _ = quiet.aggregate([np.zeros((4, 3), np.float32)], ups, {}, None, 4)  # type: ignore[arg-type]
    np.testing.assert_allclose(agg[0], ups[0].delta[0], rtol=1e-6)  # equal-weight mean
    noisy = DPFedAvg(clip=1.0, noise_multiplier=1.0, seed=3)
    state = noisy.init_server_state([], None)  # type: ignore[arg-type]
    a1, s1 = noisy.aggregate([], ups, state, None, 4)  # type: ignore[arg-type]
    a2, _ = noisy.aggregate([], ups, state, None, 4)  # type: ignore[arg-type]
    a3, _ = noisy.aggregate([], ups, s1, None, 4)  # type: ignore[arg-type]
    np.testing.assert_array_equal(a1[0], a2[0])  # same seed and round: same noise
    assert not np.allclose(a1[0], a3[0])  # next round: fresh noise
    std = float(np.std(a1[0] - agg[0]))
    assert 0.05 < std < 0.6  # noise std sigma*C/m = 0.25


# --- the engine ------------------------------------------------------------------------------


def test_engine_runs_ccpgd_and_dp_fedavg_with_records() -> None:
    fed = synthetic_federation(num_sites=3)
    sites = {
        "overrides": {
            "h2": {"platform": {"kind": "sgx", "known_vulnerabilities": ["CVE-2020-0551"]}}
        }
    }
    res = run_federation(
        small_config(algorithm={"name": "ccpgd", "lam": 0.05, "mu": 0.01}, sites=sites), fed
    )
    for rec in res.rounds:
        assert 0 <= rec["extra"]["leakage"] <= 1 and rec["sim_time_s"] > 0
    dp = run_federation(small_config(algorithm={"name": "dp_fedavg", "noise_multiplier": 0.1}), fed)
    again = run_federation(
        small_config(algorithm={"name": "dp_fedavg", "noise_multiplier": 0.1}), fed
    )
    for x, y in zip(dp.weights, again.weights, strict=True):
        np.testing.assert_array_equal(x, y)


def test_ccpgd_config_needs_plain_sgd() -> None:
    from medsilo.config import ConfigError

    with pytest.raises(ConfigError, match="momentum"):
        small_config(
            algorithm={"name": "ccpgd"},
            training={"rounds": 1, "local_steps": 1, "lr": 0.1, "momentum": 0.9},
        )
    with pytest.raises(ConfigError, match="sgd"):
        small_config(
            algorithm={"name": "ccpgd"},
            training={"rounds": 1, "local_steps": 1, "lr": 0.1, "optimizer": "adam"},
        )
