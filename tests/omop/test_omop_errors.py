"""Bad OMOP input is refused before anything is extracted or trained, with a message naming
the table, column, concept or unit (and the site), by training and by ``medsilo site check |
report`` alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.data.base import DataFormatError
from medsilo.data.registry import build_federation
from medsilo.data.spec import DataConfig
from medsilo.omop.postgres_cluster import Cluster
from medsilo.omop.site_checks import OmopSourceError
from tests.omop.heart_cdm import EXAMPLES, omop_section, write_hospitals
from tests.omop.site_cli_args import flat, omop_args

DB = "broken_db"
runner = CliRunner()


@pytest.fixture(scope="module")
def cluster(postgres: Cluster) -> Cluster:
    """``intact`` (va), ``no_measurement`` (table dropped), ``no_unit_col`` (column
    dropped), ``kg_chol`` (cholesterol recorded in kg)."""
    schemas = ["intact", "no_measurement", "no_unit_col", "kg_chol"]
    write_hospitals(postgres, DB, dict.fromkeys(schemas, "va"))
    with psycopg.connect(postgres.dsn(dbname=DB)) as conn:
        conn.execute("DROP TABLE no_measurement.measurement")
        conn.execute("ALTER TABLE no_unit_col.observation DROP COLUMN unit_concept_id")
        conn.execute(
            "INSERT INTO kg_chol.concept VALUES (9529, 'kilogram', 'Unit', 'UCUM', 'Unit', 'S', "
            "'kg', '1970-01-01', '2099-12-31')"
        )
        conn.execute(
            "UPDATE kg_chol.measurement SET unit_concept_id = 9529 "
            "WHERE measurement_concept_id = 3027114"
        )
    return postgres


def _build(cluster: Cluster, schemas: list[str], **changes: Any) -> None:
    section = omop_section(cluster, DB, schemas) | changes
    build_federation(DataConfig.model_validate({"dataset": "omop", "omop": section}), seed=0)


def test_a_missing_table_is_named(cluster: Cluster) -> None:
    with pytest.raises(OmopSourceError) as err:
        _build(cluster, ["intact", "no_measurement"])
    assert "1 of 2 OMOP site(s) failed" in str(err.value)
    assert "site 'no_measurement'" in str(err.value)
    assert "table no_measurement.measurement not found" in str(err.value)


def test_a_missing_column_is_named(cluster: Cluster) -> None:
    with pytest.raises(OmopSourceError, match=r"column no_unit_col\.observation\.unit_concept_id"):
        _build(cluster, ["no_unit_col"])


def test_an_unknown_concept_is_named(cluster: Cluster, tmp_path: Path) -> None:
    spec = yaml.safe_load((EXAMPLES / "heart_cohort.yaml").read_text())
    spec["features"][4]["concept_ids"] = [3027114, 123456789]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(OmopSourceError, match=r"123456789 \(feature 'chol'\)"):
        _build(cluster, ["intact"], spec=str(path))


def test_a_unit_without_conversion_is_named(cluster: Cluster) -> None:
    with pytest.raises(OmopSourceError) as err:
        _build(cluster, ["kg_chol"])
    message = str(err.value)
    assert "kg_chol.measurement rows of concept(s) [3027114] (feature 'chol')" in message
    assert "unit 'kg' (concept 9529)" in message and "cannot be converted" in message


def test_a_refused_connection_is_named(tmp_path: Path) -> None:
    section = {
        "schema": str(EXAMPLES / "heart_schema.yaml"),
        "spec": str(EXAMPLES / "heart_cohort.yaml"),
        "sites": [{"name": "far", "dsn": f"host={tmp_path} port=5 user=x password=secret"}],
    }
    with pytest.raises(OmopSourceError) as err:
        build_federation(DataConfig.model_validate({"dataset": "omop", "omop": section}), seed=0)
    assert "site 'far': cannot connect to PostgreSQL" in str(err.value)
    assert "secret" not in str(err.value)


def test_a_spec_feature_outside_the_schema_is_named(tmp_path: Path) -> None:
    spec = yaml.safe_load((EXAMPLES / "heart_cohort.yaml").read_text())
    spec["features"][4]["to"] = "cholesterol"
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    section = {
        "schema": str(EXAMPLES / "heart_schema.yaml"),
        "spec": str(path),
        "sites": [{"name": "a", "dsn": "host=/nowhere"}],
    }
    with pytest.raises(DataFormatError) as err:
        build_federation(DataConfig.model_validate({"dataset": "omop", "omop": section}), seed=0)
    assert "feature 'cholesterol' is not a column" in str(err.value)
    assert "schema column 'chol' has no feature" in str(err.value)


def test_a_refused_site_leaves_no_run_directory(cluster: Cluster, tmp_path: Path) -> None:
    from medsilo.config import RunConfig
    from medsilo.experiment import run_experiment

    cfg = RunConfig.model_validate(
        {
            "name": "omop-refused",
            "data": {"dataset": "omop", "omop": omop_section(cluster, DB, ["intact", "kg_chol"])},
            "model": {"name": "logistic"},
            "training": {"rounds": 1, "local_steps": 1},
        }
    )
    run_dir = tmp_path / "run"
    with pytest.raises(OmopSourceError, match="site 'kg_chol'"):
        run_experiment(cfg, run_dir)
    assert not run_dir.exists()


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ("no_measurement", "table no_measurement.measurement not found"),
        ("no_unit_col", "column no_unit_col.observation.unit_concept_id not found"),
        ("kg_chol", "(feature 'chol'): unit 'kg' (concept 9529)"),
    ],
)
def test_site_check_names_what_the_database_lacks(
    cluster: Cluster, schema: str, message: str
) -> None:
    result = runner.invoke(app, ["site", "check", *omop_args(cluster, DB, schema)])
    assert result.exit_code == 1
    assert f"site '{schema}'" in flat(result.output) and message in flat(result.output)


def test_site_check_names_an_unknown_concept(cluster: Cluster, tmp_path: Path) -> None:
    spec = yaml.safe_load((EXAMPLES / "heart_cohort.yaml").read_text())
    spec["features"][4]["concept_ids"] = [3027114, 123456789]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    args = [*omop_args(cluster, DB, "intact"), "--omop-spec", str(path)]
    result = runner.invoke(app, ["site", "check", *args])
    assert result.exit_code == 1
    assert "123456789 (feature 'chol')" in flat(result.output)


def test_site_report_names_a_refused_connection(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    dsn = f"host={tmp_path} port=5 user=x password=secret"
    args = [
        *["--schema", str(EXAMPLES / "heart_schema.yaml")],
        *["--omop-spec", str(EXAMPLES / "heart_cohort.yaml"), "--dsn", dsn],
    ]
    result = runner.invoke(app, ["site", "report", *args, "--out", str(out)])
    assert result.exit_code == 1
    assert "site 'cdm': cannot connect to PostgreSQL" in flat(result.output)
    assert "secret" not in result.output and not out.exists()
