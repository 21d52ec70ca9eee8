"""``medsilo site check | report --fhir``: a hospital checks its FHIR bundles against the
federation schema and releases the DP data report, as a CSV site does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.data.heart_disease import HOSPITALS
from medsilo.data.paths import resolve_root
from medsilo.fhir.heart_disease_bundles import write_heart_disease_bundles
from tests.fhir.heart_bundles import FEATURES, SCHEMA

runner = CliRunner()


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles")
    write_heart_disease_bundles(resolve_root(None) / "heart_disease", out, HOSPITALS)
    return out


def _args(data: Path) -> list[str]:
    return ["--schema", str(SCHEMA), "--fhir", str(FEATURES), "--data", str(data)]


def test_check_passes_and_shows_each_column(bundles: Path) -> None:
    result = runner.invoke(app, ["site", "check", *_args(bundles / "va.ndjson")])
    assert result.exit_code == 0, result.output
    assert "site va: 200 labelled rows" in result.output
    chol = next(line for line in result.output.splitlines() if line.lstrip("│ ").startswith("chol"))
    assert "mg/dL" in chol and "ok" in chol
    assert "the data follows the federation schema" in result.output


def test_check_names_the_resource_and_field(bundles: Path, tmp_path: Path) -> None:
    broken = tmp_path / "va.ndjson"
    text = (bundles / "va.ndjson").read_text().replace('"code":"mg/dL"', '"code":"kg"', 1)
    broken.write_text(text)
    result = runner.invoke(app, ["site", "check", *_args(broken)])
    assert result.exit_code == 1
    unwrapped = "".join(result.output.split())  # rich wraps long lines anywhere
    expected = f"{broken} line 1 entry 2 Observation/va-0001-chol (feature 'chol'): field "
    assert "".join((expected + "valueQuantity.code: unit 'kg'").split()) in unwrapped


def test_check_needs_mapping_or_fhir(bundles: Path) -> None:
    result = runner.invoke(app, ["site", "check", "--schema", str(SCHEMA), "--data", str(bundles)])
    assert result.exit_code == 2
    assert "--fhir and --data (FHIR bundles)" in " ".join(result.output.split())


def test_report_is_the_dp_report_of_the_bundles(bundles: Path, tmp_path: Path) -> None:
    path = tmp_path / "va.json"
    args = ["--epsilon", "2", "--seed", "0", "--site", "va", "--out", str(path)]
    result = runner.invoke(app, ["site", "report", *_args(bundles / "va.ndjson"), *args])
    assert result.exit_code == 0, result.output
    report = json.loads(path.read_text())
    assert report["site"] == "va" and report["privacy"]["epsilon"] == 2.0
    assert set(report["features"]) == {
        "age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak"
    }  # fmt: skip
    assert 150 < report["count"] < 250  # 200 patients, Laplace noise of scale ~ 15
