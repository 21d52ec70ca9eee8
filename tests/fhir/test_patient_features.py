"""Codes to schema rows: units per resource, aggregates, value types, medications, resources
recorded in error, age at the index date, references by fullUrl."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from medsilo.data.fhir_sites import check_fhir_site, load_fhir_spec
from medsilo.data.site_validation import SiteCheck

LOINC, UCUM, RXNORM = (
    "http://loinc.org",
    "http://unitsofmeasure.org",
    ("http://www.nlm.nih.gov/research/umls/rxnorm"),
)
SNOMED = "http://snomed.info/sct"
LOCAL = "https://hospital.example/codes"
SCHEMA = {
    "name": "cardio",
    "label": {"name": "cad", "classes": [0, 1]},
    "max_missing": 1.0,
    "columns": [
        {"name": "age", "type": "numeric", "unit": "years", "range": [0, 120]},
        {"name": "sex", "type": "binary"},
        {"name": "chol", "type": "numeric", "unit": "mg/dL", "range": [0, 1000],
         "analyte": "cholesterol"},
        {"name": "max_hr", "type": "numeric", "unit": "bpm", "range": [20, 250]},
        {"name": "mean_sbp", "type": "numeric", "unit": "mmHg", "range": [50, 250]},
        {"name": "smoker", "type": "binary"},
        {"name": "chest_pain", "type": "categorical", "codes": ["typical", "atypical"]},
        {"name": "statin", "type": "binary"},
        {"name": "visits", "type": "numeric", "unit": "%", "range": [0, 100]},
    ],
}  # fmt: skip
FEATURES = {
    "name": "cardio",
    "features": [
        {"to": "age", "source": "age"},
        {"to": "sex", "source": "gender", "values": {"male": "1", "female": "0"}},
        {"to": "chol", "source": "observation", "codes": [f"{LOINC}|2093-3"]},
        {"to": "max_hr", "source": "observation", "codes": [f"{LOINC}|8867-4"], "aggregate": "max"},
        {"to": "mean_sbp", "source": "observation", "codes": [f"{LOINC}|8480-6"],
         "aggregate": "mean"},
        {"to": "smoker", "source": "observation", "codes": [f"{LOCAL}|smoker"]},
        {"to": "chest_pain", "source": "observation", "codes": [f"{LOCAL}|cp"],
         "values": {f"{LOCAL}|t": "typical", f"{LOCAL}|a": "atypical"}},
        {"to": "statin", "source": "medication", "codes": [f"{RXNORM}|36567"],
         "aggregate": "exists"},
        {"to": "visits", "source": "observation", "codes": [f"{LOINC}|8480-6"],
         "aggregate": "count"},
    ],
    "label": {"source": "condition", "codes": [f"{SNOMED}|53741008"]},
}  # fmt: skip


def _obs(pid: str, rid: str, code: str, day: str, **value: Any) -> dict[str, Any]:
    system, _, c = code.rpartition("|")
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": value.pop("status", "final"),
        "code": {"coding": [{"system": system, "code": c}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": day,
        **value,
    }


def _qty(value: float, unit: str) -> dict[str, Any]:
    return {"valueQuantity": {"value": value, "system": UCUM, "code": unit}}


def _patients() -> list[dict[str, Any]]:
    a = [
        {"resourceType": "Patient", "id": "a", "gender": "female", "birthDate": "1950-06-16"},
        _obs("a", "a1", f"{LOINC}|2093-3", "2020-06-15", **_qty(5.0, "mmol/L")),
        _obs("a", "a2", f"{LOINC}|2093-3", "2020-06-20", **_qty(200.0, "mg/dL")),
        _obs("a", "a3", f"{LOINC}|8867-4", "2020-06-15", **_qty(150.0, "/min")),
        _obs("a", "a4", f"{LOINC}|8867-4", "2020-06-16", **_qty(170.0, "/min")),
        _obs("a", "a5", f"{LOINC}|8480-6", "2020-06-15", **_qty(120.0, "mm[Hg]")),
        _obs("a", "a6", f"{LOINC}|8480-6", "2020-06-15", **_qty(16.0, "kPa")),
        _obs("a", "a7", f"{LOCAL}|smoker", "2020-06-15", valueBoolean=True),
        _obs("a", "a8", f"{LOCAL}|cp", "2020-06-15",
             valueCodeableConcept={"coding": [{"system": LOCAL, "code": "a"}]}),
        {"resourceType": "MedicationStatement", "id": "a9", "status": "active",
         "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "36567"}]},
         "subject": {"reference": "urn:uuid:patient-a"}},
        {"resourceType": "Condition", "id": "a10",
         "code": {"coding": [{"system": SNOMED, "code": "53741008"}]},
         "subject": {"reference": "Patient/a"}},
    ]  # fmt: skip
    b = [
        {"resourceType": "Patient", "id": "b", "gender": "male", "birthDate": "1960"},
        _obs("b", "b1", f"{LOINC}|2093-3", "2020-06-15", **_qty(180.0, "mg/dL")),
        _obs("b", "b2", f"{LOINC}|2093-3", "2020-07-01", status="entered-in-error",
             **_qty(900.0, "mg/dL")),
        _obs("b", "b3", f"{LOCAL}|smoker", "2020-06-15", valueInteger=0),
        {"resourceType": "Condition", "id": "b4",
         "code": {"coding": [{"system": SNOMED, "code": "53741008"}]},
         "verificationStatus": {"coding": [{
             "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
             "code": "refuted"}]},
         "subject": {"reference": "Patient/b"}},
        {"resourceType": "MedicationStatement", "id": "b5", "status": "not-taken",
         "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "36567"}]},
         "subject": {"reference": "Patient/b"}},
    ]  # fmt: skip
    return [a, b]


def _site(tmp_path: Path, patients: list[list[dict[str, Any]]]) -> SiteCheck:
    (tmp_path / "schema.yaml").write_text(yaml.safe_dump(SCHEMA))
    (tmp_path / "features.yaml").write_text(yaml.safe_dump(FEATURES))
    folder = tmp_path / "bundles"
    folder.mkdir()
    for i, resources in enumerate(patients):
        urls = [f"urn:uuid:patient-{r['id']}" if r["resourceType"] == "Patient" else None
                for r in resources]  # fmt: skip
        entries = [{"resource": r} | ({"fullUrl": u} if u else {}) for r, u in
                   zip(resources, urls, strict=True)]  # fmt: skip
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
        (folder / f"{i:02d}.json").write_text(json.dumps(bundle))
    schema, spec = load_fhir_spec(tmp_path / "schema.yaml", tmp_path / "features.yaml")
    return check_fhir_site(schema, spec, "h", folder)


def test_features_from_coded_resources(tmp_path: Path) -> None:
    check = _site(tmp_path, _patients())
    assert check.ok, check.message()
    assert check.values is not None and check.labels is not None
    v = check.values
    np.testing.assert_array_equal(v["age"], [69, 60])  # a day before her birthday; "1960"
    np.testing.assert_array_equal(v["sex"], [0, 1])
    # the last cholesterol by date; patient b's value recorded in error is left out
    np.testing.assert_array_equal(v["chol"], [200.0, 180.0])
    np.testing.assert_array_equal(v["max_hr"][:1], [170.0])
    assert np.isnan(v["max_hr"][1])
    # 120 mmHg and 16 kPa (120.01 mmHg) averaged in the site's unit for the feature (mmHg)
    assert v["mean_sbp"][0] == pytest.approx((120.0 + 16.0 * 7.50062) / 2)
    np.testing.assert_array_equal(v["smoker"], [1, 0])  # valueBoolean, valueInteger
    assert v["chest_pain"][0] == 1 and np.isnan(v["chest_pain"][1])  # "atypical"; none
    np.testing.assert_array_equal(v["statin"], [1, 0])  # b's statement is not-taken
    np.testing.assert_array_equal(v["visits"], [2, 0])
    np.testing.assert_array_equal(check.labels, [1, 0])  # b's condition is refuted


def test_mixed_units_take_the_site_unit_then_the_schema_unit(tmp_path: Path) -> None:
    patients = _patients()
    patients[0][2]["effectiveDateTime"] = "2020-06-01"  # the mmol/L value is now the last
    check = _site(tmp_path, patients)
    assert check.values is not None
    assert check.values["chol"][0] == pytest.approx(5.0 * 38.67)
    assert next(c for c in check.columns if c.column == "chol").conversion == "mg/dL"


def test_a_numeric_feature_needs_a_quantity(tmp_path: Path) -> None:
    from medsilo.fhir.bundle_reading import FhirSourceError

    patients = _patients()
    del patients[0][3]["valueQuantity"]
    patients[0][3]["valueString"] = "fast"
    with pytest.raises(
        FhirSourceError,
        match=r"Observation/a3 \(feature 'max_hr'\): field "
        "valueString: a numeric feature needs a valueQuantity with a unit",
    ):
        _site(tmp_path, patients)
