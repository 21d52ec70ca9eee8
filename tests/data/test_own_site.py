"""A deployed site reads only its own data, yet gets exactly the engine's arrays for that site;
``data.hospitals`` picks and orders the heart-disease hospitals of a federation."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from medsilo.data.base import ArrayData, DataFormatError, FederatedData
from medsilo.data.heart_disease import CATEGORICAL, CATEGORIES, HOSPITALS, read_centre
from medsilo.data.own_site import load_own_site
from medsilo.data.paths import data_root
from medsilo.data.registry import build_federation
from medsilo.data.spec import DataConfig
from medsilo.data.standardize import Moments, apply_standardization, combine
from medsilo.data.synthetic_sites import write_cardio_sites, write_dicom_sites
from tests.data.site_fixtures import EXAMPLES, SITES

SUBSET = ["cleveland", "hungarian", "va"]
HEART = data_root() / "heart_disease"


def _heart(**kw: Any) -> DataConfig:
    return DataConfig.model_validate({"dataset": "heart_disease", **kw})


def _same(a: ArrayData, b: ArrayData) -> bool:
    return a.x.dtype == b.x.dtype and np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)


def _assert_single(own: FederatedData, engine: FederatedData, site: str) -> None:
    assert own.site_names == [site]
    assert _same(own.sites[0].train, engine.site(site).train)
    assert _same(own.sites[0].test, engine.site(site).test)
    assert _same(own.test, engine.site(site).test)
    assert (own.num_classes, own.task, own.input_shape) == (
        engine.num_classes,
        engine.task,
        engine.input_shape,
    )


def test_documented_codes_are_the_pooled_categories() -> None:
    """Why the default federation is unchanged: FLamby's categories (the union over the four
    files) are exactly the documented code sets, which each hospital now encodes with alone."""
    centres = [read_centre(HEART / f"processed.{h}.data")[0] for h in HOSPITALS]
    for c in CATEGORICAL:
        assert sorted({int(v) for cols in centres for v in cols[c]}) == CATEGORIES[c]


@pytest.mark.parametrize("hospitals", [None, SUBSET], ids=["all-four", "subset"])
def test_heart_own_site_equals_engine_site(hospitals: list[str] | None, tmp_path: Path) -> None:
    cfg = _heart(hospitals=hospitals)
    engine = build_federation(cfg, seed=5)
    # Each site's process sees only its own file, copied where nothing else lies.
    for site in engine.site_names:
        own_file = tmp_path / site / f"processed.{site}.data"
        own_file.parent.mkdir()
        shutil.copy(HEART / own_file.name, own_file)
        _assert_single(load_own_site(cfg, site, own_file, seed=5), engine, site)
        _assert_single(load_own_site(cfg, site, own_file.parent, seed=5), engine, site)
        _assert_single(load_own_site(cfg, site, None, seed=5), engine, site)


@pytest.mark.parametrize("hospitals", [None, SUBSET], ids=["all-four", "subset"])
def test_moments_of_own_sites_reproduce_federated_standardisation(
    hospitals: list[str] | None,
) -> None:
    raw = _heart(hospitals=hospitals, standardize="none")
    engine = build_federation(_heart(hospitals=hospitals, standardize="federated"), seed=0)
    own = [load_own_site(raw, s, None, seed=0) for s in engine.site_names]
    mean, std = combine([Moments.of(f.sites[0].train.x) for f in own])  # at the coordinator
    for fed in own:  # back at each site: the federation, one site or one array set
        site = fed.sites[0]
        _assert_single(apply_standardization(fed, mean, std), engine, site.name)
        scaled = apply_standardization(site, mean, std)
        assert _same(scaled.train, engine.site(site.name).train)
        assert _same(apply_standardization(site.test, mean, std), engine.site(site.name).test)
    # The raw arrays are not what the engine trains on, so this check could fail.
    assert not np.allclose(own[0].sites[0].train.x, engine.sites[0].train.x)


def test_hospitals_subset_picks_sites_in_order() -> None:
    full = build_federation(_heart(), seed=0)
    assert full.site_names == list(HOSPITALS)
    order = ["va", "cleveland"]
    fed = build_federation(_heart(hospitals=order), seed=0)
    assert fed.site_names == order
    for site in order:
        assert _same(fed.site(site).train, full.site(site).train)
        assert _same(fed.site(site).test, full.site(site).test)
    assert _same(fed.test, ArrayData.concat([full.site(s).test for s in order]))
    assert fed.input_shape == full.input_shape == (13,)
    # Listing all four in dataset order is the default federation.
    assert _same(build_federation(_heart(hospitals=list(HOSPITALS)), seed=0).test, full.test)


def test_hospitals_subset_with_caps_draws_from_those_hospitals() -> None:
    cfg = _heart(hospitals=SUBSET, max_train_samples=200, max_test_samples=60)
    fed = build_federation(cfg, seed=1)
    assert fed.site_names == SUBSET
    assert sum(len(s.train) for s in fed.sites) == 200
    assert len(fed.test) == 60 == sum(len(s.test) for s in fed.sites)
    full = build_federation(_heart(hospitals=SUBSET), seed=1)
    for s in fed.sites:  # each capped site is a subset of that hospital's rows
        rows = {r.tobytes() for r in full.site(s.name).train.x}
        assert all(r.tobytes() in rows for r in s.train.x)
    with pytest.raises(ValueError, match="not supported for a deployed heart_disease site"):
        load_own_site(cfg, "va", None, seed=1)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"hospitals": ["cleveland", "boston"]}, r"data.hospitals: unknown .*\['boston'\]"),
        ({"hospitals": ["va", "va"]}, r"data.hospitals: each hospital may be listed once"),
        ({"hospitals": []}, "data.hospitals is empty"),
        ({"hospitals": ["va"], "num_sites": 2}, "num_sites=2 but partition 'natural'"),
        ({"hospitals": ["va"], "partition": "iid", "num_sites": 2}, "data.hospitals picks"),
        ({"dataset": "mnist", "partition": "iid", "num_sites": 2, "hospitals": ["va"]},
         "data.hospitals picks"),
    ],
)  # fmt: skip
def test_hospitals_refused(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DataConfig.model_validate({"dataset": "heart_disease", **kw})


def test_bad_site_or_path_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'switzerland' is not a hospital .*data.hospitals"):
        load_own_site(_heart(hospitals=SUBSET), "switzerland", None, seed=0)
    with pytest.raises(ValueError, match="'boston' is not a hospital"):
        load_own_site(_heart(), "boston", None, seed=0)
    with pytest.raises(DataFormatError, match="no such file or folder"):
        load_own_site(_heart(), "va", tmp_path / "nowhere", seed=0)
    with pytest.raises(DataFormatError, match=r"missing data file: expected .*processed.va.data"):
        load_own_site(_heart(), "va", tmp_path, seed=0)  # a folder without the file
    bad = tmp_path / "va.csv"
    bad.write_text("63,1,7,145,233,1,2,150,0,2.3,3,0,6,0\n")
    with pytest.raises(DataFormatError, match=r"column 'cp': .*not known codes .*'7'"):
        load_own_site(_heart(), "va", bad, seed=0)


def test_partitioned_site_matches_engine() -> None:
    cfg = DataConfig(
        dataset="mnist",
        partition="dirichlet",
        num_sites=4,
        alpha=0.3,
        max_train_samples=1500,
        max_test_samples=400,
        standardize="federated",
    )
    engine = build_federation(cfg.model_copy(update={"standardize": "none"}), seed=2)
    own = load_own_site(cfg, "site-03", None, seed=2)
    _assert_single(own, engine, "site-03")
    with pytest.raises(ValueError, match="'site-04' is not a site of this mnist federation"):
        load_own_site(cfg, "site-04", None, seed=2)


def _tabular(csvs: dict[str, Path]) -> DataConfig:
    sites = [
        {"name": s, "csv": str(csvs[s]), "mapping": str(EXAMPLES / f"mapping_{s[-1]}.yaml")}
        for s in SITES
    ]
    tabular = {"schema": str(EXAMPLES / "schema.yaml"), "sites": sites}
    return DataConfig.model_validate({"dataset": "tabular", "tabular": tabular})


def test_tabular_site_reads_only_its_csv(tmp_path: Path) -> None:
    csvs = write_cardio_sites(tmp_path / "csv", n_per_site=60, seed=0)
    cfg = _tabular(csvs)
    engine = build_federation(cfg, seed=0)
    moved = tmp_path / "elsewhere.csv"
    shutil.copy(csvs["hospital_b"], moved)
    csvs["hospital_c"].write_text("not,the,schema\n1,2,3\n")  # another site's data is broken
    _assert_single(load_own_site(cfg, "hospital_b", moved, seed=0), engine, "hospital_b")
    with pytest.raises(DataFormatError, match="site 'hospital_c'"):
        load_own_site(cfg, "hospital_c", None, seed=0)
    with pytest.raises(ValueError, match=r"'hospital_z' is not listed in data.tabular.sites"):
        load_own_site(cfg, "hospital_z", None, seed=0)


def test_dicom_site_reads_only_its_folder(tmp_path: Path) -> None:
    sites = write_dicom_sites(tmp_path / "d", sites=2, per_site=8, size=16)
    entries = [{"name": s, "folder": str(f), "labels": str(lab)} for s, (f, lab) in sites.items()]
    dicom = {
        "sites": entries,
        "classes": ["negative", "positive"],
        "image_size": 8,
        "cache_dir": str(tmp_path / "cache"),
    }
    cfg = DataConfig.model_validate({"dataset": "dicom", "dicom": dicom})
    engine = build_federation(cfg, seed=0)
    folder = tmp_path / "moved"
    shutil.copytree(sites["site_1"][0], folder)
    shutil.rmtree(sites["site_1"][0])
    _assert_single(load_own_site(cfg, "site_1", folder, seed=0), engine, "site_1")
