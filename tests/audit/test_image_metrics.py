"""PSNR, SSIM (Wang et al. 2004) and reconstruction-to-truth matching against known values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medsilo.audit.image_metrics import gaussian_window, match_to_truth, psnr, ssim

RNG = np.random.default_rng(0)


def test_identical_images_score_perfectly() -> None:
    x = RNG.random((1, 28, 28))
    assert psnr(x, x, 1.0) == math.inf
    assert ssim(x, x, 1.0) == pytest.approx(1.0, abs=1e-12)


def test_psnr_of_known_error() -> None:
    x = RNG.random((3, 16, 16))
    # a constant error d gives MSE = d^2, so PSNR = 20 log10(R / d)
    assert psnr(x + 0.1, x, 1.0) == pytest.approx(20.0, abs=1e-9)
    assert psnr(x + 0.1, x, 2.0) == pytest.approx(20 * math.log10(20), abs=1e-9)
    noise = RNG.normal(scale=0.05, size=(1, 200, 200))
    assert psnr(x[:1, :1, :1] + noise, x[:1, :1, :1] + 0 * noise, 1.0) == pytest.approx(
        26.02, abs=0.1
    )  # sigma 0.05 -> 10 log10(1 / 0.0025)


def test_ssim_of_constant_images_is_the_luminance_term() -> None:
    a, b, r = 0.2, 0.6, 1.0
    c1 = (0.01 * r) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)  # both variances are 0
    assert ssim(np.full((20, 20), a), np.full((20, 20), b), r) == pytest.approx(expected)


def test_ssim_falls_with_noise_and_is_symmetric() -> None:
    x = RNG.random((1, 28, 28))
    scores = [ssim(x + RNG.normal(scale=s, size=x.shape), x, 1.0) for s in (0.01, 0.1, 0.5)]
    assert scores[0] > 0.95 and scores[0] > scores[1] > scores[2]
    y = x + RNG.normal(scale=0.1, size=x.shape)
    assert ssim(x, y, 1.0) == pytest.approx(ssim(y, x, 1.0))


def test_gaussian_window_is_normalised_and_small_images_still_work() -> None:
    w = gaussian_window()
    assert w.shape == (11, 11) and w.sum() == pytest.approx(1.0)
    assert w[5, 5] == w.max() and w[0, 0] == pytest.approx(w[10, 10])
    tiny = RNG.random((1, 6, 6))
    assert ssim(tiny, tiny, 1.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="different shapes"):
        ssim(tiny, RNG.random((1, 6, 7)), 1.0)


def test_matching_undoes_a_permutation() -> None:
    truths = RNG.random((5, 1, 8, 8))
    perm = np.array([3, 0, 4, 1, 2])
    recons = truths[perm] + RNG.normal(scale=0.01, size=truths.shape)
    order = match_to_truth(recons, truths)
    assert np.array_equal(perm[order], np.arange(5))
