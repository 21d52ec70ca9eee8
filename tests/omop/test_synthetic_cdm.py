"""The synthetic population (medsilo.omop.synthetic_cdm) runs the heart-disease specification
unchanged, with its mixed cholesterol units converted; ``medsilo bench omop`` measures one
site's extraction on it (here on a few hundred patients)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.data.schema import load_schema
from medsilo.omop.cohort_spec import load_cohort_spec
from medsilo.omop.consent_access import create_consent_reader
from medsilo.omop.postgres_cluster import Cluster
from medsilo.omop.site_cohort import extract_site
from medsilo.omop.synthetic_cdm import write_synthetic_cdm
from tests.omop.heart_cdm import EXAMPLES, create_database

DB, SCHEMA, PERSONS = "synthetic_db", "synthetic", 600


@pytest.fixture(scope="module")
def cluster(postgres: Cluster) -> Cluster:
    create_database(postgres, DB)
    with psycopg.connect(postgres.dsn(dbname=DB)) as conn:
        written = write_synthetic_cdm(conn, SCHEMA, PERSONS, seed=1)
        create_consent_reader(conn, SCHEMA, f"reader_{SCHEMA}")
    assert written["person"] == PERSONS and written["measurement"] > 5 * PERSONS
    return postgres


def _owner_count(cluster: Cluster, query: str) -> int:
    with psycopg.connect(cluster.dsn(dbname=DB)) as conn:
        (count,) = conn.execute(query.replace("{s}", SCHEMA)).fetchone() or (0,)
    return int(count)


def test_the_cohort_is_every_consented_person_without_earlier_disease(cluster: Cluster) -> None:
    expected = _owner_count(
        cluster,
        "SELECT count(*) FROM {s}.consent k WHERE k.consented AND NOT EXISTS ("
        "SELECT 1 FROM {s}.condition_occurrence c JOIN {s}.visit_occurrence v "
        "ON v.person_id = c.person_id AND v.visit_concept_id = 9202 "
        "WHERE c.person_id = k.person_id AND c.condition_start_date < v.visit_start_date)",
    )
    schema = load_schema(EXAMPLES / "heart_schema.yaml")
    spec = load_cohort_spec(EXAMPLES / "heart_cohort.yaml")
    check = extract_site("synthetic", cluster.dsn(f"reader_{SCHEMA}", DB), SCHEMA, spec, schema)
    assert check.rows == expected and 0.9 * PERSONS < expected < PERSONS
    assert check.values is not None and check.labels is not None
    assert 0.1 < check.labels.mean() < 0.9  # both classes
    in_mmol = _owner_count(
        cluster, "SELECT count(*) FROM {s}.measurement WHERE unit_concept_id = 8753"
    )
    assert in_mmol > 0
    chol = check.values["chol"][~np.isnan(check.values["chol"])]
    assert chol.min() > 99 and chol.max() < 561  # mmol/L rows came back in mg/dL


def test_the_same_seed_writes_the_same_population(cluster: Cluster) -> None:
    with psycopg.connect(cluster.dsn(dbname=DB)) as conn:
        write_synthetic_cdm(conn, "synthetic_again", PERSONS, seed=1)
        digests = [
            conn.execute(
                f"SELECT md5(string_agg(m::text, ',' ORDER BY measurement_id)) "
                f"FROM {s}.measurement m"
            ).fetchone()
            for s in (SCHEMA, "synthetic_again")
        ]
    assert digests[0] == digests[1]


def test_bench_omop_prints_and_writes_the_measurements(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "omop", "--patients", "300", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    measured = json.loads((tmp_path / "omop.json").read_text())
    assert measured["patients"] == 300 and measured["written_rows"] > 300 * 10
    assert 250 < measured["cohort_rows"] < 300  # consent withdrawn or earlier disease: out
    assert measured["database_mib"] > 0 and measured["extract_s"] > 0
    assert measured["site_peak_mib"] >= measured["site_peak_mib_before"] > 0
    assert "cohort rows extracted" in result.output
