"""The synthetic segmentation hospitals: MONAI's images, seeded, non-IID, named by a config."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from medsilo.data import DataConfig, build_federation
from medsilo.data.base import ArrayData
from medsilo.data.own_site import load_own_site
from medsilo.data.synthetic_segmentation import (
    SITE_PROFILES,
    VOLUME_SHARE,
    load_synthetic_segmentation,
)


def arrays(split: object) -> ArrayData:
    assert isinstance(split, ArrayData)
    return split


def test_a_config_names_three_hospitals_of_64x64_images_with_masks() -> None:
    fed = build_federation(DataConfig(dataset="synthetic_segmentation"), seed=3)
    assert fed.task == "segmentation" and fed.num_classes == 2
    assert fed.site_names == [p.name for p in SITE_PROFILES]
    for site, profile in zip(fed.sites, SITE_PROFILES, strict=True):
        train, test = arrays(site.train), arrays(site.test)
        assert train.x.shape == (profile.train, 1, 64, 64) and train.x.dtype == np.float32
        assert train.y.shape == train.x.shape and train.y.dtype == np.int64
        assert set(np.unique(train.y)) == {0, 1} and len(test) == profile.test
        assert train.x.min() >= 0.0 and train.x.max() <= 1.0
    pooled = arrays(fed.test)
    assert len(pooled) == sum(p.test for p in SITE_PROFILES)
    np.testing.assert_array_equal(pooled.y[: SITE_PROFILES[0].test], arrays(fed.sites[0].test).y)


def test_the_run_seed_decides_the_images() -> None:
    a, b = load_synthetic_segmentation(1), load_synthetic_segmentation(1)
    c = load_synthetic_segmentation(2)
    np.testing.assert_array_equal(arrays(a.sites[2].train).x, arrays(b.sites[2].train).x)
    assert not np.array_equal(arrays(a.sites[2].train).y, arrays(c.sites[2].train).y)


def test_hospitals_differ_in_objects_and_noise() -> None:
    fed = load_synthetic_segmentation(0)
    background_level = []
    object_share = []
    for site in fed.sites:
        train = arrays(site.train)
        background_level.append(float(train.x[train.y == 0].mean()))
        object_share.append(float(train.y.mean()))
    # noise rises from hospital a to c; hospital b's few large discs cover the most pixels
    assert background_level == sorted(background_level)
    assert background_level[2] > 2 * background_level[0]
    assert max(object_share) == object_share[1]


def test_the_3d_variant_holds_volumes() -> None:
    fed = build_federation(DataConfig(dataset="synthetic_segmentation_3d"), seed=0)
    train = arrays(fed.sites[0].train)
    assert fed.input_shape == (1, 32, 32, 32)
    assert train.y.shape == (SITE_PROFILES[0].train // VOLUME_SHARE, 1, 32, 32, 32)
    assert fed.task == "segmentation" and set(np.unique(train.y)) == {0, 1}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"partition": "iid", "num_sites": 3}, "partition must be 'natural'"),
        ({"num_sites": 4}, "has exactly 3 hospitals"),
        ({"max_train_samples": 20}, "fixed sizes"),
    ],
)
def test_impossible_settings_are_refused_when_read(extra: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DataConfig.model_validate({"dataset": "synthetic_segmentation", **extra})


def test_a_deployed_site_makes_the_same_images_as_the_engine() -> None:
    cfg = DataConfig(dataset="synthetic_segmentation")
    engine = build_federation(cfg, seed=4).site("hospital_b")
    own = load_own_site(cfg, "hospital_b", None, seed=4)
    assert own.site_names == ["hospital_b"] and own.task == "segmentation"
    np.testing.assert_array_equal(arrays(own.sites[0].train).x, arrays(engine.train).x)
    np.testing.assert_array_equal(arrays(own.test).y, arrays(engine.test).y)
