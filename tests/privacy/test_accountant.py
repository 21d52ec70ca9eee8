"""The accountant wrapper against dp-accounting (and Opacus) directly."""

from __future__ import annotations

import dp_accounting
import pytest
from opacus.accountants import RDPAccountant

from medsilo.privacy.accountant import calibrate_noise_multiplier, epsilon
from medsilo.privacy.adaptive_clip import update_noise_multiplier


def direct(z: float, q: float, count: int, delta: float) -> float:
    event: dp_accounting.DpEvent = dp_accounting.GaussianDpEvent(z)
    if q < 1:
        event = dp_accounting.PoissonSampledDpEvent(q, event)
    acc = dp_accounting.rdp.RdpAccountant()
    acc.compose(event, count)
    return float(acc.get_epsilon(delta))


@pytest.mark.parametrize(("z", "q", "count"), [(1.0, 1.0, 10), (2.5, 1.0, 50), (1.1, 0.01, 500)])
def test_epsilon_is_dp_accountings(z: float, q: float, count: int) -> None:
    assert epsilon(z, q, count, 1e-5) == pytest.approx(direct(z, q, count, 1e-5), rel=1e-9)


def test_epsilon_grows_with_rounds_and_shrinks_with_noise_and_sampling() -> None:
    by_rounds = [epsilon(1.5, 0.3, r, 1e-5) for r in (1, 2, 5, 20)]
    assert by_rounds == sorted(by_rounds) and len(set(by_rounds)) == 4
    by_noise = [epsilon(z, 1.0, 10, 1e-5) for z in (0.8, 1.5, 3.0, 6.0)]
    assert by_noise == sorted(by_noise, reverse=True) and len(set(by_noise)) == 4
    assert epsilon(1.5, 0.3, 10, 1e-5) < epsilon(1.5, 1.0, 10, 1e-5)
    assert epsilon(1.5, 1.0, 10, 1e-6) > epsilon(1.5, 1.0, 10, 1e-5)
    assert epsilon(1.5, 1.0, 0, 1e-5) == 0.0
    assert epsilon(0.0, 1.0, 3, 1e-5) == float("inf")


def test_dp_sgd_epsilon_agrees_with_opacus_accountant() -> None:
    z, q, steps, delta = 1.1, 32 / 6000, 1000, 1e-5
    opacus = RDPAccountant()
    opacus.history = [(z, q, steps)]
    # Different RDP order grids: the two agree to a few percent, not to the last digit.
    assert epsilon(z, q, steps, delta) == pytest.approx(opacus.get_epsilon(delta), rel=0.05)


@pytest.mark.parametrize(("q", "count"), [(1.0, 20), (0.02, 400)])
def test_calibration_hits_the_target_from_below(q: float, count: int) -> None:
    z = calibrate_noise_multiplier(3.0, q, count, 1e-5)
    assert epsilon(z, q, count, 1e-5) <= 3.0
    assert epsilon(z - 0.01, q, count, 1e-5) > 3.0  # and not much more noise than needed


def test_adaptive_clipping_noise_split_costs_one_gaussian_of_z() -> None:
    z, sigma_b = 1.2, 2.0
    z_delta = update_noise_multiplier(z, sigma_b)
    assert z_delta > z
    both = dp_accounting.ComposedDpEvent(
        [dp_accounting.GaussianDpEvent(z_delta), dp_accounting.GaussianDpEvent(2 * sigma_b)]
    )
    acc = dp_accounting.rdp.RdpAccountant()
    acc.compose(both, 10)
    assert acc.get_epsilon(1e-5) == pytest.approx(epsilon(z, 1.0, 10, 1e-5), rel=1e-9)
    with pytest.raises(ValueError, match="count_stddev"):
        update_noise_multiplier(2.0, 0.5)
