"""Quantile-based adaptive clipping (Andrew, Thakkar, McMahan, Ramaswamy, NeurIPS 2021).

A fixed clip norm ``C`` is hard to pick: too small biases every update, too large wastes
noise. Andrew et al. track the ``gamma``-quantile of the update norms privately:

* each site sends, next to its clipped update, ``b_i = 1[||delta_i|| <= C]``;
* the coordinator releases ``b_mean = (sum_i b_i + N(0, sigma_b^2)) / m``;
* and moves the clip geometrically: ``C <- C * exp(-eta_C * (b_mean - gamma))``
  (too many updates under the clip: shrink it; too few: grow it).

Releasing ``b`` costs privacy too. With ``m`` the number of summed indicators,
``b_mean = (sum_i (b_i - 1/2) + N(0, sigma_b^2)) / m + 1/2`` is the same number, and
adding or removing one site moves the centred sum by at most 1/2. Both releases are then
Gaussian with sensitivities ``C`` (updates) and 1/2 (the count), so spending multiplier
``z_delta`` on the updates keeps the round's total at the budgeted multiplier ``z`` when

    z_delta = (z^-2 - (2 sigma_b)^-2)^(-1/2)

(Theorem 1 of the paper; the accountant then charges one Gaussian of multiplier ``z`` per
round). It needs ``2 sigma_b > z``; the paper's default ``sigma_b = m / 20`` satisfies it
for the usual cohort sizes.
"""

from __future__ import annotations

import math


def default_count_stddev(cohort: int) -> float:
    """The paper's choice ``sigma_b = m / 20``."""
    return cohort / 20.0


def update_noise_multiplier(noise_multiplier: float, count_stddev: float) -> float:
    """``z_delta`` such that updates plus the noisy count cost one Gaussian of ``z``."""
    if noise_multiplier == 0:
        return 0.0
    if 2 * count_stddev <= noise_multiplier:
        raise ValueError(
            f"adaptive clipping needs 2 * count_stddev > noise_multiplier, got count_stddev="
            f"{count_stddev:g} and noise_multiplier={noise_multiplier:g}; raise "
            "adaptive_clip.count_stddev (of algorithm or privacy.client_dp) or lower the noise"
        )
    return float((noise_multiplier**-2 - (2 * count_stddev) ** -2) ** -0.5)


def next_clip(clip: float, unclipped_share: float, target_quantile: float, lr: float) -> float:
    """Geometric update ``C * exp(-eta * (b_mean - gamma))``."""
    return clip * math.exp(-lr * (unclipped_share - target_quantile))
