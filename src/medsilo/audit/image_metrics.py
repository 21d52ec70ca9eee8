"""Image-quality scores for reconstructions: PSNR, SSIM, and optimal matching to the truth.

PSNR = 10 log10(R^2 / MSE), with ``R`` the data range (max - min of the dataset's pixel
values, so that it equals PSNR on the [0, 1] pixel scale whatever normalisation the loader
applied); identical images give +inf.

SSIM follows Wang, Bovik, Sheikh and Simoncelli (2004), "Image quality assessment: from error
visibility to structural similarity", with their reference settings: an 11x11 circular-symmetric
Gaussian window of standard deviation 1.5, ``K1 = 0.01``, ``K2 = 0.03``,
``C1 = (K1 R)^2``, ``C2 = (K2 R)^2``, local statistics computed only where the window fits
inside the image ("valid", as their MATLAB reference), and the mean of the SSIM map:

    SSIM(x, y) = mean over windows of
                 (2 mu_x mu_y + C1) (2 sigma_xy + C2)
                 / ((mu_x^2 + mu_y^2 + C1) (sigma_x^2 + sigma_y^2 + C2))

Multi-channel images average the per-channel SSIM. Images smaller than 11 pixels get the
largest odd window that fits (same standard deviation), so tiny test images still work.

A batch of ``B`` reconstructions comes back in no particular order, so reconstructions are
matched to ground-truth images by the assignment that minimises total MSE (Hungarian
algorithm, :func:`scipy.optimize.linear_sum_assignment`) before scoring.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]
from scipy.signal import correlate2d  # type: ignore[import-untyped]

Array = NDArray[np.floating]

WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
K1 = 0.01
K2 = 0.03


def psnr(reconstruction: Array, truth: Array, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB; ``inf`` for identical images."""
    mse = float(np.mean((np.asarray(reconstruction, np.float64) - truth) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def gaussian_window(size: int = WINDOW_SIZE, sigma: float = WINDOW_SIGMA) -> NDArray[np.float64]:
    """Normalised 2-D Gaussian window (sums to 1)."""
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(ax**2) / (2.0 * sigma**2))
    w = np.outer(g, g)
    return w / w.sum()  # type: ignore[no-any-return]


def _as_chw(image: Array) -> NDArray[np.float64]:
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 2:
        return a[None]
    if a.ndim != 3:
        raise ValueError(f"SSIM needs (H, W) or (C, H, W) images, got shape {a.shape}")
    return a


def ssim(reconstruction: Array, truth: Array, data_range: float) -> float:
    """Mean structural similarity (Wang et al. 2004) of two images of the same shape."""
    x, y = _as_chw(reconstruction), _as_chw(truth)
    if x.shape != y.shape:
        raise ValueError(f"SSIM of images of different shapes {x.shape} vs {y.shape}")
    size = min(WINDOW_SIZE, x.shape[1], x.shape[2])
    size -= 1 - size % 2  # odd
    w = gaussian_window(size)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    scores = []
    for xc, yc in zip(x, y, strict=True):

        def filt(a: NDArray[np.float64]) -> NDArray[np.float64]:
            return correlate2d(a, w, mode="valid")  # type: ignore[no-any-return]

        mu_x, mu_y = filt(xc), filt(yc)
        sxx = filt(xc * xc) - mu_x**2
        syy = filt(yc * yc) - mu_y**2
        sxy = filt(xc * yc) - mu_x * mu_y
        num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
        den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
        scores.append(float(np.mean(num / den)))
    return float(np.mean(scores))


def match_to_truth(reconstructions: Array, truths: Array) -> NDArray[np.int64]:
    """``order`` such that ``reconstructions[order[i]]`` is matched to ``truths[i]``."""
    r = np.asarray(reconstructions, np.float64).reshape(len(reconstructions), -1)
    t = np.asarray(truths, np.float64).reshape(len(truths), -1)
    cost = ((t[:, None, :] - r[None, :, :]) ** 2).mean(axis=2)
    rows, cols = linear_sum_assignment(cost)
    order = np.empty(len(t), dtype=np.int64)
    order[rows] = cols
    return order
