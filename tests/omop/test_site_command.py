"""``medsilo site check | report`` on an OMOP site: the per-column table, the DP report (the
same statistics a CSV site's report noises), and rows that do not fit the schema refused
with the column, the concept and exit code 1, before any report is written."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.omop.postgres_cluster import Cluster
from tests.omop.heart_cdm import EXAMPLES, heart_csv, write_hospitals
from tests.omop.site_cli_args import flat, omop_args

DB = "site_cli_db"
runner = CliRunner()


@pytest.fixture(scope="module")
def cluster(postgres: Cluster) -> Cluster:
    """``cli_ok`` (cleveland) as written; ``cli_wild`` (cleveland) with one blood pressure of
    900 mmHg and one chest-pain type 7 (UCI codes are 1-4)."""
    write_hospitals(postgres, DB, {"cli_ok": "cleveland", "cli_wild": "cleveland"})
    with psycopg.connect(postgres.dsn(dbname=DB)) as conn:
        conn.execute(
            "UPDATE cli_wild.measurement SET value_as_number = 900 "
            "WHERE measurement_concept_id = 3004249 AND person_id = 1"
        )
        conn.execute(
            "UPDATE cli_wild.observation SET value_as_number = 7 "
            "WHERE observation_concept_id = 2000000002 AND person_id = 2"
        )
    return postgres


def test_check_prints_each_column_with_its_concepts_and_units(cluster: Cluster) -> None:
    result = runner.invoke(app, ["site", "check", *omop_args(cluster, DB, "cli_ok")])
    assert result.exit_code == 0, result.output
    assert "site cli_ok: 303 labelled rows" in result.output
    assert "measurement 3027114" in result.output  # chol's source
    assert "8840 -> mg/dL x1" in result.output  # its unit concept and factor
    assert "ok: the data follows the federation schema" in result.output


def test_the_report_is_the_csv_files_report(cluster: Cluster, tmp_path: Path) -> None:
    """Same rows, same seed: the OMOP site's DP report is the CSV file's, number for number."""
    csv = tmp_path / "cleveland.csv"
    csv.write_text(heart_csv("cleveland"), encoding="utf-8")
    common = ["--site", "cleveland", "--epsilon", "2", "--seed", "5"]
    from_omop = runner.invoke(app, ["site", "report", *omop_args(cluster, DB, "cli_ok"), *common])
    from_csv = runner.invoke(
        app,
        [
            "site",
            "report",
            "--schema",
            str(EXAMPLES / "heart_schema.yaml"),
            "--mapping",
            str(EXAMPLES / "heart_mapping.yaml"),
            "--data",
            str(csv),
            *common,
        ],
    )
    assert from_omop.exit_code == 0, from_omop.output
    assert from_csv.exit_code == 0, from_csv.output
    report = json.loads(from_omop.stdout)
    assert report == json.loads(from_csv.stdout)
    assert report["privacy"]["epsilon"] == 2 and abs(report["count"] - 303) < 50


def test_rows_outside_the_schema_fail_the_check_by_column(cluster: Cluster) -> None:
    result = runner.invoke(app, ["site", "check", *omop_args(cluster, DB, "cli_wild")])
    assert result.exit_code == 1
    out = flat(result.output)
    assert "column 'trestbps' (local 'measurement 3004249'): 1 value(s) outside" in out
    assert "column 'cp' (local 'observation 2000000002'): value(s) ['7'] are not codes" in out


def test_a_refused_site_writes_no_report(cluster: Cluster, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = runner.invoke(
        app, ["site", "report", *omop_args(cluster, DB, "cli_wild"), "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "fails the federation schema" in flat(result.output)
    assert not out.exists()


def test_a_role_that_can_write_is_refused(cluster: Cluster) -> None:
    result = runner.invoke(
        app, ["site", "check", *omop_args(cluster, DB, "cli_ok", user="postgres")]
    )
    assert result.exit_code == 1
    assert "refusing to start: role 'postgres' can write" in flat(result.output)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--omop-spec", "spec.yaml"], "needs both --omop-spec and --dsn"),
        (["--mapping", "m.yaml", "--data", "d.csv", "--dsn", "x"], "give one source"),
        ([], "give one source: --mapping and --data"),
        (["--omop-spec", "s.yaml", "--dsn", "x", "--data", "d.csv"], "not --data"),
        (["--mapping", "m.yaml"], "give the site's data with --data"),
    ],
)
def test_the_source_options_must_name_one_source(args: list[str], message: str) -> None:
    result = runner.invoke(
        app, ["site", "check", "--schema", str(EXAMPLES / "heart_schema.yaml"), *args]
    )
    assert result.exit_code == 2
    assert message in flat(result.output)
