"""Bad FHIR input is refused before anything is trained or written, with a message naming
the file, the resource (Type/id) and the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from medsilo.config import RunConfig
from medsilo.data.fhir_sites import build_fhir_federation
from medsilo.data.sources import FhirSourceConfig
from medsilo.data.tabular_sites import SiteDataError
from medsilo.fhir.bundle_reading import FhirSourceError, read_site_bundles
from medsilo.fhir.heart_disease_bundles import patient_bundle
from tests.fhir.heart_bundles import FEATURES, SCHEMA

LINE = ["63", "1", "1", "145", "233", "1", "2", "150", "0", "2.3", "3", "0", "6", "1"]


def _bundle(line: int = 1) -> dict[str, Any]:
    return patient_bundle("h", line, LINE)


def _resource(bundle: dict[str, Any], rid: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["id"] == rid)


def _write(folder: Path, *bundles: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "site.ndjson"
    path.write_text("".join(json.dumps(b) + "\n" for b in bundles), encoding="utf-8")
    return path


def _config(*sites: tuple[str, Path]) -> FhirSourceConfig:
    return FhirSourceConfig.model_validate(
        {
            "schema": str(SCHEMA),
            "features": str(FEATURES),
            "sites": [{"name": n, "bundles": str(p)} for n, p in sites],
        }
    )


def _refusal(path: Path) -> str:
    with pytest.raises(SiteDataError) as err:
        build_fhir_federation(_config(("site", path)))
    return str(err.value)


def test_malformed_json_names_the_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, _bundle(1))
    path.write_text(path.read_text() + '{"resourceType": "Bundle", \n', encoding="utf-8")
    with pytest.raises(FhirSourceError, match=rf"{path} line 2: not valid JSON"):
        read_site_bundles(path)


def test_a_bundle_that_is_not_one(tmp_path: Path) -> None:
    path = _write(tmp_path, {"resourceType": "Patient", "id": "x"})
    with pytest.raises(
        FhirSourceError, match="line 1: expected a Bundle, found resourceType 'Patient'"
    ):
        read_site_bundles(path)


@pytest.mark.parametrize(
    ("bundle", "expected"),
    [
        ({"resourceType": "Bundle", "entry": []}, "field type: Value for the field 'type' is"),
        ({"resourceType": "Bundle", "type": "collection", "entry": [3]}, "field entry: must be"),
        ({"resourceType": "Bundle", "type": "collection", "entry": {"a": 1}}, "field entry: must"),
    ],
    ids=["no type", "entry not an object", "entries not a list"],
)
def test_a_malformed_bundle(bundle: dict[str, Any], expected: str, tmp_path: Path) -> None:
    path = _write(tmp_path, bundle)
    with pytest.raises(FhirSourceError, match=rf"{path} line 1: {expected}"):
        read_site_bundles(path)


def test_a_resource_of_an_unexpected_type(tmp_path: Path) -> None:
    bundle = _bundle()
    bundle["entry"].append({"resource": {"resourceType": "Encounter", "id": "e1"}})
    message = _refusal(_write(tmp_path, bundle))
    n = len(bundle["entry"]) - 1
    assert (
        f"site.ndjson line 1 entry {n} Encounter/e1: resource of unexpected type 'Encounter'"
        in message
    )


def test_an_invalid_field_is_named_with_its_resource(tmp_path: Path) -> None:
    bundle = _bundle()
    _resource(bundle, "h-0001-chol")["valueQuantity"]["value"] = "high"
    _resource(bundle, "h-0001")["birthDate"] = "1925-13-40"
    message = _refusal(_write(tmp_path, bundle))
    assert "Observation/h-0001-chol: field valueQuantity.value: Value error" in message
    assert "Patient/h-0001: field birthDate" in message


def _no_unit(quantity: dict[str, Any]) -> None:
    del quantity["code"], quantity["unit"]


CHOL = "Observation/h-0001-chol (feature 'chol'): field valueQuantity.code: "


@pytest.mark.parametrize(
    ("rid", "edit", "expected"),
    [
        (
            "h-0001-trestbps",
            lambda r: r.update(code={"text": "blood pressure"}),
            "Observation/h-0001-trestbps: field code.coding: no coding with a system and a code",
        ),
        (
            "h-0001-chol",
            lambda r: r["valueQuantity"].update(code="kg"),
            CHOL + "unit 'kg': 'kg' is a mass and 'mg/dL' is a mass concentration; they cannot",
        ),
        (
            "h-0001-chol",
            lambda r: r["valueQuantity"].update(code="mg/furlong"),
            CHOL + "unit 'mg/furlong': unknown unit 'mg/furlong'",
        ),
        ("h-0001-chol", lambda r: _no_unit(r["valueQuantity"]), CHOL + "the quantity has no unit"),
        (
            "h-0001-chol",
            lambda r: r.update(subject={"reference": "Patient/nobody"}),
            "Observation/h-0001-chol: field subject.reference: Patient/nobody is in no bundle",
        ),
    ],
    ids=["missing code", "unit with no conversion", "unknown unit", "no unit", "no patient"],
)
def test_a_resource_the_features_cannot_use(
    rid: str, edit: Callable[[dict[str, Any]], None], expected: str, tmp_path: Path
) -> None:
    bundle = _bundle()
    edit(_resource(bundle, rid))
    assert expected in _refusal(_write(tmp_path, bundle))


def test_values_outside_the_schema_name_the_patient(tmp_path: Path) -> None:
    bundle = _bundle()
    _resource(bundle, "h-0001-cp")["valueInteger"] = 7
    message = _refusal(_write(tmp_path, bundle))
    assert "column 'cp': 1 value(s) are not known codes" in message
    assert "Patient/h-0001: '7'" in message


def test_every_failing_site_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    from medsilo.experiment import run_experiment

    good = _write(tmp_path / "good", _bundle(1), _bundle(2))
    bad_bundle = _bundle()
    _resource(bad_bundle, "h-0001-chol")["valueQuantity"]["code"] = "kg"
    bad = _write(tmp_path / "bad", bad_bundle)
    cfg = RunConfig.model_validate(
        {
            "name": "fhir-refused",
            "data": {"dataset": "fhir", "fhir": _config(("good", good), ("bad", bad)).model_dump()},
            "model": {"name": "logistic"},
            "training": {"rounds": 1, "local_steps": 1},
        }
    )
    run_dir = tmp_path / "run"
    with pytest.raises(SiteDataError, match=r"1 of 2 FHIR site\(s\) failed:\nsite 'bad'"):
        run_experiment(cfg, run_dir)
    assert not run_dir.exists()


def test_a_patient_in_two_bundles(tmp_path: Path) -> None:
    path = _write(tmp_path, _bundle(1), _bundle(1))
    with pytest.raises(FhirSourceError, match=r"line 2 entry 0 Patient/h-0001: Patient/h-0001 is "
                       r"also in .*site.ndjson line 1 entry 0"):  # fmt: skip
        read_site_bundles(path)
