"""``data.fhir`` in a config: validated without the bundles, paths read from the file's
folder; a feature specification that does not fill the schema is refused before any site is
read."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from medsilo.config import load_config
from medsilo.data.base import DataFormatError
from medsilo.data.fhir_sites import load_fhir_spec
from medsilo.data.spec import DataConfig
from tests.fhir.heart_bundles import FEATURES, SCHEMA

SECTION = {
    "schema": "heart_schema.yaml",
    "features": "heart_features.yaml",
    "sites": [{"name": "a", "bundles": "a.ndjson"}],
}


def test_paths_are_read_from_the_config_folder(tmp_path: Path) -> None:
    path = tmp_path / "federation.yaml"
    raw = {
        "name": "fhir",
        "data": {"dataset": "fhir", "fhir": SECTION},
        "model": {"name": "logistic"},
        "training": {"rounds": 1, "local_steps": 1},
    }
    path.write_text(yaml.safe_dump(raw))
    cfg = load_config(path)
    assert cfg.data.fhir is not None
    assert cfg.data.fhir.features == tmp_path / "heart_features.yaml"
    assert cfg.data.fhir.schema_path == tmp_path / "heart_schema.yaml"
    assert cfg.data.fhir.sites[0].bundles == tmp_path / "a.ndjson"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"dataset": "fhir"}, "needs a data.fhir section"),
        ({"dataset": "tabular", "fhir": SECTION}, "data.fhir is set but dataset is 'tabular'"),
        ({"dataset": "fhir", "fhir": SECTION, "partition": "iid"}, "partition must be 'natural'"),
        (
            {"dataset": "fhir", "fhir": SECTION | {"sites": SECTION["sites"] * 2}},
            "site names must be unique",
        ),
    ],
)
def test_bad_sections_are_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DataConfig.model_validate(data)


def test_a_specification_that_does_not_fill_the_schema(tmp_path: Path) -> None:
    spec = yaml.safe_load(FEATURES.read_text())
    spec["features"][4]["to"] = "cholesterol"  # chol
    spec["features"][7]["to"] = "trestbps"  # thalach, aggregate max
    spec["features"][5]["aggregate"] = "max"  # fbs, a binary column
    path = tmp_path / "features.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(DataFormatError) as err:
        load_fhir_spec(SCHEMA, path)
    message = str(err.value)
    assert "feature 'cholesterol' is not a column of schema" in message
    assert "column 'trestbps' is filled by 2 features" in message
    assert "feature 'fbs': aggregate max needs a numeric column, 'fbs' is binary" in message
    assert "schema column 'chol' has no feature" in message
    assert "schema column 'thalach' has no feature" in message


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        ({"to": "x", "source": "observation"}, "source observation needs codes"),
        ({"to": "x", "source": "age", "codes": ["s|c"]}, "source age takes no codes"),
        ({"to": "x", "source": "gender"}, "gender needs `values`"),
        ({"to": "x", "source": "condition", "codes": ["s|c"]}, "aggregate must be count or"),
        ({"to": "x", "source": "observation", "codes": ["8480-6"]}, "should match pattern"),
    ],
)
def test_bad_features_are_refused(feature: dict[str, object], message: str, tmp_path: Path) -> None:
    path = tmp_path / "features.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "features": [feature],
                                    "label": {"codes": ["s|c"]}}))  # fmt: skip
    with pytest.raises(DataFormatError, match=message):
        load_fhir_spec(SCHEMA, path)


def test_the_example_config_reads_the_example_files() -> None:
    from tests.fhir.heart_bundles import ROOT

    cfg = load_config(ROOT / "examples" / "fhir" / "heart_federation.yaml")
    assert cfg.data.fhir is not None
    schema, spec = load_fhir_spec(cfg.data.fhir.schema_path, cfg.data.fhir.features)
    assert schema.name == "uci_heart_disease_omop" and spec.name == "uci_heart_disease"
    assert [s.name for s in cfg.data.fhir.sites] == ["cleveland", "hungarian", "switzerland", "va"]
