"""``dataset: tabular``: three hospitals' CSV dialects, mapped onto one schema, train together;
a site that fails the schema stops the run before any training, naming site, column and fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from medsilo.config import RunConfig
from medsilo.data.base import DataFormatError
from medsilo.data.registry import build_federation
from medsilo.data.spec import DataConfig
from medsilo.data.synthetic_sites import write_cardio_sites
from medsilo.data.tabular_sites import SiteDataError
from tests.data.site_fixtures import EXAMPLES, SITES, mapping_dict, write_yaml


@pytest.fixture(scope="module")
def csvs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_cardio_sites(tmp_path_factory.mktemp("csv"), n_per_site=200, seed=0)


def _data(csvs: dict[str, Path], mappings: dict[str, Path] | None = None) -> dict[str, Any]:
    maps = mappings or {s: EXAMPLES / f"mapping_{s[-1]}.yaml" for s in SITES}
    return {
        "dataset": "tabular",
        "standardize": "federated",
        "tabular": {
            "schema": str(EXAMPLES / "schema.yaml"),
            "sites": [{"name": s, "csv": str(csvs[s]), "mapping": str(maps[s])} for s in SITES],
        },
    }


def test_federation_has_one_feature_layout(csvs: dict[str, Path]) -> None:
    fed = build_federation(DataConfig.model_validate(_data(csvs)), seed=0)
    assert fed.site_names == list(SITES)
    # 4 numeric + sex + smoker + 4 one-hot chest-pain codes, at every site.
    assert {s.train.x.shape[1] for s in fed.sites} == {10}
    assert fed.num_classes == 2 and fed.task == "binary"
    assert all(len(s.train) == 150 and len(s.test) == 50 for s in fed.sites)
    assert len(fed.test) == 150
    # Federated standardisation: cholesterol (feature 1) is centred across the federation,
    # which only works because site B's mmol/L were converted to mg/dL first.
    chol = np.concatenate([s.train.x[:, 1] for s in fed.sites])
    assert abs(chol.mean()) < 1e-5
    assert all(abs(s.train.x[:, 1].mean()) < 0.35 for s in fed.sites)


def test_split_is_fixed_by_split_seed_not_run_seed(csvs: dict[str, Path]) -> None:
    cfg = DataConfig.model_validate(_data(csvs))
    a, b = build_federation(cfg, seed=0), build_federation(cfg, seed=7)
    assert np.array_equal(a.sites[1].test.x, b.sites[1].test.x)


def test_wrong_unit_refuses_the_federation_with_a_precise_message(
    csvs: dict[str, Path], tmp_path: Path
) -> None:
    raw = mapping_dict("hospital_b")
    raw["columns"]["chol_mmol"]["unit"] = "mg/dL"  # the export is in mmol/L
    maps = {s: EXAMPLES / f"mapping_{s[-1]}.yaml" for s in SITES}
    maps["hospital_b"] = write_yaml(tmp_path / "b.yaml", raw)
    with pytest.raises(SiteDataError) as err:
        build_federation(DataConfig.model_validate(_data(csvs, maps)), seed=0)
    msg = str(err.value)
    assert msg.startswith("refusing to train: 1 of 3 site(s) fail validation")
    assert "site 'hospital_b'" in msg and "hospital_a" not in msg
    assert "column 'cholesterol' (local 'chol_mmol'): 200 of 200 values (100%) are outside" in msg
    assert "Fix: the values fit the range if read as 'mmol/L'" in msg


def test_out_of_range_column_refuses_the_run_before_training(
    csvs: dict[str, Path], tmp_path: Path
) -> None:
    lines = csvs["hospital_c"].read_text().splitlines()
    cells = lines[5].split(",")
    cells[0] = "230"  # AGE_Y on line 6
    lines[5] = ",".join(cells)
    bad = tmp_path / "hospital_c.csv"
    bad.write_text("\n".join(lines) + "\n")
    cfg = RunConfig.model_validate(
        {
            "data": _data(csvs | {"hospital_c": bad}),
            "training": {"rounds": 1, "local_steps": 1},
        }
    )
    from medsilo.runtime.simulation import run_federation

    with pytest.raises(SiteDataError) as err:
        run_federation(cfg)
    msg = str(err.value)
    assert "site 'hospital_c'" in msg
    assert (
        "column 'age' (local 'AGE_Y'): 1 of 200 values (0%) are outside the allowed range "
        "[18, 100] years, e.g. ['line 6: 230 years']" in msg
    )


def test_config_validation() -> None:
    with pytest.raises(ValidationError, match=r"needs a data\.tabular section"):
        DataConfig.model_validate({"dataset": "tabular"})
    base = {"schema": "s.yaml", "sites": [{"name": "a", "csv": "a.csv", "mapping": "m.yaml"}]}
    with pytest.raises(ValidationError, match="partition must be 'natural'"):
        DataConfig.model_validate(
            {"dataset": "tabular", "partition": "iid", "num_sites": 1, "tabular": base}
        )
    with pytest.raises(ValidationError, match=r"data\.tabular is set but dataset is 'mnist'"):
        DataConfig.model_validate(
            {"dataset": "mnist", "partition": "iid", "num_sites": 2, "tabular": base}
        )
    with pytest.raises(ValidationError, match="site names must be unique"):
        DataConfig.model_validate(
            {"dataset": "tabular", "tabular": base | {"sites": base["sites"] * 2}}
        )
    with pytest.raises(ValidationError, match="extra"):
        DataConfig.model_validate({"dataset": "tabular", "tabular": base | {"schemas": "x"}})


def test_missing_schema_file_is_named(csvs: dict[str, Path]) -> None:
    raw = _data(csvs)
    raw["tabular"]["schema"] = "/nonexistent/schema.yaml"
    with pytest.raises(DataFormatError, match="federation schema not found: /nonexistent"):
        build_federation(DataConfig.model_validate(raw), seed=0)


@pytest.mark.slow
def test_three_dialects_train_end_to_end(csvs: dict[str, Path]) -> None:
    from medsilo.runtime.simulation import run_federation

    cfg = RunConfig.model_validate(
        {
            "name": "tabular-e2e",
            "data": _data(csvs),
            "model": {"name": "logistic"},
            "training": {"rounds": 8, "local_steps": 20, "batch_size": 16, "lr": 0.1},
        }
    )
    res = run_federation(cfg)
    first, last = res.rounds[0]["test"], res.rounds[-1]["test"]
    # The synthetic rule's Bayes accuracy is about 0.88; chance is about 0.5.
    assert last["accuracy"] > 0.8
    assert last["loss"] < first["loss"]
    assert set(res.rounds[-1]["per_site"]) == set(SITES)


@pytest.mark.parametrize("example", ["tabular", "dicom"])
def test_example_configs_load_from_any_directory_and_round_trip(
    example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The examples' relative paths are read from their own folder, not the working one."""
    from medsilo.config import dump_config, load_config

    monkeypatch.chdir(tmp_path)
    cfg = load_config(EXAMPLES.parent / example / "federation.yaml")
    assert cfg.data.dataset == example
    demo = EXAMPLES.parents[1] / "runs" / "site-demo"
    if example == "tabular":
        assert cfg.data.tabular is not None
        assert cfg.data.tabular.schema_path.resolve() == EXAMPLES / "schema.yaml"
        assert all(s.mapping.is_file() for s in cfg.data.tabular.sites)
        assert cfg.data.tabular.sites[0].csv.resolve() == demo / "tabular" / "hospital_a.csv"
        assert f"schema: {EXAMPLES / 'schema.yaml'}" in dump_config(cfg)  # the key users write
    else:
        assert cfg.data.dicom is not None
        assert cfg.data.dicom.cache_dir.resolve() == demo / "cache"
        assert cfg.data.dicom.sites[2].labels.resolve() == demo / "dicom" / "site_2" / "labels.csv"
    text = dump_config(cfg)
    assert RunConfig.model_validate(yaml.safe_load(text)) == cfg


def test_run_directory_gets_validation_reports_without_cell_values(
    csvs: dict[str, Path], tmp_path: Path
) -> None:
    from medsilo.experiment import run_experiment

    cfg = RunConfig.model_validate(
        {"data": _data(csvs), "training": {"rounds": 1, "local_steps": 2}}
    )
    run_experiment(cfg, run_dir=tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "data" / "hospital_b_validation.json").read_text())
    assert saved["ok"] is True and saved["ignored_columns"] == ["ward"]
    chol = next(c for c in saved["columns"] if c["column"] == "cholesterol")
    assert chol["conversion"] == "mmol/L -> mg/dL"
    assert "out_of_range_examples" not in chol and "unknown" not in chol
