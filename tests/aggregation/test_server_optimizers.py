from __future__ import annotations

import numpy as np

from medsilo.aggregation.server_optimizers import FedAdam, FedAvgM, FedYogi, ServerSGD
from medsilo.models.weights import Layout

LAYOUT = Layout(names=("w", "running_mean"), trainable=(True, False), norm_layer=(False, True))


def weights() -> list[np.ndarray]:
    return [np.array([1.0, -2.0, 0.5]), np.array([0.0, 0.0])]


def test_sgd_lr_one_is_plain_fedavg() -> None:
    delta = [np.array([0.1, 0.2, -0.3]), np.array([1.0, 2.0])]
    new = ServerSGD(1.0).step(weights(), delta, LAYOUT)
    np.testing.assert_allclose(new[0], [1.1, -1.8, 0.2])
    np.testing.assert_allclose(new[1], [1.0, 2.0])


def test_non_trainable_entries_are_not_scaled() -> None:
    delta = [np.zeros(3), np.array([1.0, 2.0])]
    new = ServerSGD(0.5).step(weights(), delta, LAYOUT)
    np.testing.assert_allclose(new[1], [1.0, 2.0])


def test_avgm_accumulates_momentum() -> None:
    opt = FedAvgM(lr=1.0, momentum=0.5)
    delta = [np.ones(3), np.zeros(2)]
    w1 = opt.step(weights(), delta, LAYOUT)
    w2 = opt.step(w1, delta, LAYOUT)
    # second step moves by 1 + 0.5
    np.testing.assert_allclose(w2[0] - w1[0], 1.5 * np.ones(3))


def test_adam_first_step_is_sign_scaled_by_lr() -> None:
    opt = FedAdam(lr=0.01, beta1=0.9, beta2=0.99, tau=1e-9)
    delta = [np.array([0.3, -2.0, 1e-3]), np.zeros(2)]
    new = opt.step(weights(), delta, LAYOUT)
    np.testing.assert_allclose(new[0] - weights()[0], 0.01 * np.sign(delta[0]), rtol=1e-4)


def test_yogi_second_moment_differs_from_adam() -> None:
    adam, yogi = FedAdam(lr=0.1), FedYogi(lr=0.1)
    big, small = [np.full(3, 1.0), np.zeros(2)], [np.full(3, 0.01), np.zeros(2)]
    wa, wy = weights(), weights()
    for d in (big, small):
        wa = adam.step(wa, d, LAYOUT)
        wy = yogi.step(wy, d, LAYOUT)
    # Yogi's additive update keeps v larger after a small delta; values differ.
    assert not np.allclose(wa[0], wy[0])
    assert yogi.v[0][0] > adam.v[0][0]


def test_state_round_trip() -> None:
    opt = FedAdam(lr=0.1)
    opt.step(weights(), [np.ones(3), np.zeros(2)], LAYOUT)
    clone = FedAdam(lr=0.1)
    clone.load_state(opt.state())
    d = [np.full(3, 0.5), np.zeros(2)]
    np.testing.assert_allclose(
        opt.step(weights(), d, LAYOUT)[0], clone.step(weights(), d, LAYOUT)[0]
    )
