"""Epsilon at a given delta for the Gaussian mechanisms medsilo runs, via dp-accounting.

No hand-written accounting: every number comes from Google's ``dp_accounting`` library
(``RdpAccountant``), with the add-or-remove-one neighbouring relation. (Its PLD accountant
is tighter but took minutes and gigabytes on the small noise multipliers a calibration
search visits, on a 2-core machine, so it is not offered.)

One release of a mechanism is a Gaussian of noise multiplier ``z`` (noise std / l2
sensitivity), sub-sampled with rate ``q``:

* client-level DP-FedAvg: one release per round, ``q = cohort / num_sites`` (the unit of
  privacy is a whole site's data). With ``q = 1`` (every site, every round) this is exact.
  With ``q < 1`` medsilo samples a *fixed-size* cohort without replacement, but the event
  is accounted as Poisson sampling with the same rate: a common approximation in federated
  DP work; dp-accounting's sampling-without-replacement event needs the replace-one
  relation and so would not be comparable.
* sample-level DP-SGD at a site: one release per optimiser step with Poisson sampling of
  rate ``q = batch_size / n_site`` (Opacus-style sampling, so the accounting is exact).

``R`` releases compose as ``SelfComposedDpEvent(PoissonSampledDpEvent(q, Gaussian(z)), R)``.
"""

from __future__ import annotations

import logging
import math
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported on first use: dp-accounting takes ~0.6 s to import, and every
    # deployed site message starts a fresh process (docs/deployment.md, Performance)
    import dp_accounting

#: Calibration never goes below this noise multiplier (a budget so loose that less noise
#: would do is better served by no DP at all).
_MIN_NOISE = 0.01


class _DropConvergenceNotes(logging.Filter):
    """dp-accounting logs (through absl) every fractional RDP order it cannot evaluate and
    then leaves out; the bound stays valid, so these notes only flood the run's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "failed to converge" not in record.getMessage()


logging.getLogger("absl").addFilter(_DropConvergenceNotes())


def gaussian_event(
    noise_multiplier: float, sampling_rate: float, count: int
) -> dp_accounting.DpEvent:
    """``count`` compositions of a Gaussian of multiplier ``z``, Poisson-sampled at ``q``."""
    if not 0 < sampling_rate <= 1:
        raise ValueError(f"sampling rate must be in (0, 1], got {sampling_rate}")
    import dp_accounting

    event: dp_accounting.DpEvent = dp_accounting.GaussianDpEvent(noise_multiplier)
    if sampling_rate < 1:
        event = dp_accounting.PoissonSampledDpEvent(sampling_rate, event)
    return dp_accounting.SelfComposedDpEvent(event, count)


def new_accountant() -> dp_accounting.PrivacyAccountant:
    from dp_accounting import rdp

    return rdp.RdpAccountant()


@lru_cache(maxsize=8192)
def epsilon(
    noise_multiplier: float,
    sampling_rate: float,
    count: int,
    delta: float,
) -> float:
    """Epsilon at ``delta`` after ``count`` releases (0 for none, inf without noise)."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if count == 0:
        return 0.0
    if noise_multiplier <= 0:
        return math.inf
    acc = new_accountant()
    acc.compose(gaussian_event(noise_multiplier, sampling_rate, count))
    return float(acc.get_epsilon(delta))


@lru_cache(maxsize=1024)
def calibrate_noise_multiplier(
    target_epsilon: float,
    sampling_rate: float,
    count: int,
    delta: float,
) -> float:
    """The smallest noise multiplier (to 1e-4) whose epsilon after ``count`` releases is at
    most ``target_epsilon``, from dp-accounting's ``calibrate_dp_mechanism``."""
    if target_epsilon <= 0:
        raise ValueError(f"target epsilon must be > 0, got {target_epsilon}")
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if epsilon(_MIN_NOISE, sampling_rate, count, delta) <= target_epsilon:
        return _MIN_NOISE
    import dp_accounting

    z = float(
        dp_accounting.calibrate_dp_mechanism(
            lambda: new_accountant(),
            lambda z: gaussian_event(z, sampling_rate, count),
            target_epsilon,
            delta,
            dp_accounting.LowerEndpointAndGuess(_MIN_NOISE, 1.0),
            tol=1e-4,
        )
    )
    # The library guarantees epsilon(z) <= target; keep it true after the float round trip.
    while epsilon(z, sampling_rate, count, delta) > target_epsilon:
        z += 1e-4
    return z
