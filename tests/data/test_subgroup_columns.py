"""Heart-disease subgroup columns (sex, age band) beside the features, through every step
that builds a federation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medsilo.data.base import ArrayData
from medsilo.data.heart_disease import feature_names, load_heart_disease, subgroup_columns
from medsilo.data.own_site import load_own_site
from medsilo.data.registry import build_federation, load_central
from medsilo.data.spec import DataConfig


def test_sex_and_age_bands_from_the_raw_values() -> None:
    columns = {"sex": np.array([0.0, 1.0, 1.0, 0.0]), "age": np.array([49.0, 50.0, 59.0, 60.0])}
    groups = subgroup_columns(columns)
    assert groups["sex"].tolist() == ["female", "male", "male", "female"]
    assert groups["age_band"].tolist() == ["<50", "50-59", "50-59", "60+"]


def test_columns_survive_standardisation_and_caps_and_stay_in_the_features() -> None:
    raw = load_heart_disease()
    cfg = DataConfig(dataset="heart_disease", standardize="federated", max_test_samples=100)
    fed = build_federation(cfg, seed=0)
    assert {"age", "sex"} <= set(feature_names({"cp": [1, 2, 3, 4], "restecg": [0, 1, 2]}))
    sex_feature = feature_names({"cp": [1, 2, 3, 4], "restecg": [0, 1, 2]}).index("sex")
    for site, raw_site in zip(fed.sites, raw.sites, strict=True):
        assert len(site.test.groups["sex"]) == len(site.test)
        raw_male = raw_site.train.x[:, sex_feature] == 1
        assert (raw_site.train.groups["sex"] == "male").tolist() == raw_male.tolist()
        standardized_male = site.train.x[:, sex_feature] > 0  # still a feature, now scaled
        assert (site.train.groups["sex"] == "male").tolist() == standardized_male.tolist()
    assert len(fed.test.groups["age_band"]) == len(fed.test) == 100
    assert sorted(np.unique(fed.test.groups["age_band"])) == ["50-59", "60+", "<50"]
    pooled = load_central("heart_disease")
    assert len(pooled.train.groups["sex"]) == len(pooled.train)


def test_group_column_length_is_checked() -> None:
    with pytest.raises(ValueError, match="subgroup column 'sex' has 1 rows"):
        ArrayData(np.zeros((2, 1), np.float32), np.zeros(2, np.int64), {"sex": np.array(["m"])})


def test_a_deployed_sites_cached_arrays_keep_the_subgroup_columns(tmp_path: Path) -> None:
    from medsilo.runtime.flower.deployed_site import cache_own_data, load_cached_own_data

    fresh = load_own_site(DataConfig(dataset="heart_disease"), "hungarian", None, 0)
    cache_own_data(tmp_path, fresh)
    stored = load_cached_own_data(tmp_path)
    assert stored is not None
    for got, want in ((stored.sites[0].train, fresh.sites[0].train), (stored.test, fresh.test)):
        assert sorted(got.groups) == ["age_band", "sex"]
        for name in got.groups:
            assert got.groups[name].tolist() == want.groups[name].tolist()
