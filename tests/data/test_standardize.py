from __future__ import annotations

import numpy as np
import pytest

from medsilo.data import DataConfig, build_federation
from medsilo.data.standardize import Moments, combine, standardize_federation


def test_combined_moments_equal_pooled_statistics() -> None:
    rng = np.random.default_rng(0)
    parts = [
        rng.normal(loc=i, scale=i + 1, size=(20 + 7 * i, 4)).astype(np.float32) for i in range(3)
    ]
    mean, std = combine([Moments.of(p) for p in parts])
    pooled = np.concatenate(parts).astype(np.float64)
    np.testing.assert_allclose(mean, pooled.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(std, pooled.std(axis=0), rtol=1e-9)


def test_constant_feature_is_not_divided_by_zero() -> None:
    x = np.ones((5, 2), dtype=np.float32)
    _, std = combine([Moments.of(x)])
    assert np.all(std == 1.0)
    with pytest.raises(ValueError, match="no training rows"):
        combine([Moments.of(np.zeros((0, 2), np.float32))])


def test_heart_disease_federated_standardisation() -> None:
    raw = build_federation(DataConfig(dataset="heart_disease"), 0)
    fed = build_federation(DataConfig(dataset="heart_disease", standardize="federated"), 0)
    pooled = np.concatenate([s.train.x for s in fed.sites]).astype(np.float64)
    np.testing.assert_allclose(pooled.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(pooled.std(axis=0), 1.0, atol=1e-4)
    # same rows, same labels, only rescaled; test sets use the training statistics
    for a, b in zip(raw.sites, fed.sites, strict=True):
        np.testing.assert_array_equal(a.test.y, b.test.y)
        assert a.test.x.shape == b.test.x.shape
    assert standardize_federation(raw).sites[0].train.x.dtype == np.float32
