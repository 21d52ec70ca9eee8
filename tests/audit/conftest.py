"""Tiny federations for the privacy-audit tests: 8x8 images and memorisable tabular rows."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from medsilo.config import RunConfig, parse_config
from medsilo.data.base import ArrayData, FederatedData, SiteData


def image_federation(
    num_sites: int = 2, n: int = 24, size: int = 8, seed: int = 0
) -> FederatedData:
    """Smooth random blobs in [0, 1] (so the TV prior fits), label = brightest quadrant."""
    rng = np.random.default_rng(seed)
    sites = []
    for i in range(num_sites):
        raw = gaussian_filter(rng.random((n, 1, size, size)), sigma=(0, 0, 1.2, 1.2))
        lo = raw.min(axis=(1, 2, 3), keepdims=True)
        hi = raw.max(axis=(1, 2, 3), keepdims=True)
        x = ((raw - lo) / (hi - lo)).astype(np.float32)
        h = size // 2
        quads = np.stack(
            [x[:, 0, :h, :h], x[:, 0, :h, h:], x[:, 0, h:, :h], x[:, 0, h:, h:]], axis=1
        ).mean(axis=(2, 3))
        y = quads.argmax(axis=1).astype(np.int64)
        cut = n // 2
        sites.append(SiteData(f"s{i}", ArrayData(x[:cut], y[:cut]), ArrayData(x[cut:], y[cut:])))
    test = ArrayData.concat([s.test for s in sites])
    return FederatedData("blobs", sites, test, 4, "multiclass")


def random_label_federation(
    num_sites: int = 2, n: int = 200, d: int = 20, seed: int = 0
) -> FederatedData:
    """Gaussian features with random labels: a model can only memorise its training rows."""
    rng = np.random.default_rng(seed)
    sites = []
    for i in range(num_sites):
        x = rng.normal(size=(n, d)).astype(np.float32)
        y = rng.integers(0, 2, size=n).astype(np.int64)
        cut = n // 4
        sites.append(SiteData(f"r{i}", ArrayData(x[:cut], y[:cut]), ArrayData(x[cut:], y[cut:])))
    test = ArrayData.concat([s.test for s in sites])
    return FederatedData("random", sites, test, 2, "binary")


def audit_config(model: str = "cnn", **overrides: object) -> RunConfig:
    raw: dict[str, object] = {
        "name": "audit-t",
        "seed": 0,
        "data": {"dataset": "mnist", "partition": "iid", "num_sites": 2},
        "model": {"name": model},
        "algorithm": {"name": "fedavg"},
        "training": {"rounds": 1, "local_steps": 1, "batch_size": 4, "lr": 0.1},
    }
    raw.update(overrides)
    return parse_config(raw)
