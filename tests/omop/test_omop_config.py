"""``data.omop`` in a config: validated without a database, paths read from the file's folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from medsilo.config import load_config
from medsilo.data.spec import DataConfig

SECTION = {
    "schema": "heart_schema.yaml",
    "spec": "heart_cohort.yaml",
    "sites": [{"name": "a", "dsn": "host=db dbname=omop user=reader"}],
}


def test_paths_are_read_from_the_config_folder(tmp_path: Path) -> None:
    path = tmp_path / "federation.yaml"
    raw = {
        "name": "omop",
        "data": {"dataset": "omop", "omop": SECTION},
        "model": {"name": "logistic"},
        "training": {"rounds": 1, "local_steps": 1},
    }
    path.write_text(yaml.safe_dump(raw))
    cfg = load_config(path)
    assert cfg.data.omop is not None
    assert cfg.data.omop.spec == tmp_path / "heart_cohort.yaml"
    assert cfg.data.omop.schema_path == tmp_path / "heart_schema.yaml"
    assert cfg.data.omop.sites[0].cdm_schema == "cdm"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"dataset": "omop"}, "needs a data.omop section"),
        ({"dataset": "tabular", "omop": SECTION}, "data.omop is set but dataset is 'tabular'"),
        ({"dataset": "omop", "omop": SECTION, "partition": "iid"}, "partition must be 'natural'"),
        (
            {"dataset": "omop", "omop": SECTION | {"sites": SECTION["sites"] * 2}},
            "site names must be unique",
        ),
    ],
)
def test_bad_sections_are_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DataConfig.model_validate(data)
