"""The four UCI heart-disease hospitals written as FHIR R4 bundles, one Bundle per patient.

The same events the OMOP generator writes (:data:`medsilo.omop.heart_disease_cdm.EVENTS`,
concepts :mod:`medsilo.omop.heart_concepts`), with the same codes: each file line becomes a
Patient (``<hospital>-<line>``, birth date such that the age at the index date is the
file's age, ``gender`` male/female); the measurements become Observations coded in LOINC
with a UCUM ``valueQuantity`` (resting systolic blood pressure 8480-6 in mm[Hg], serum
cholesterol 2093-3 in mg/dL, heart rate 8867-4 in /min) or, for ST depression, the
hospitals' local code system; chest-pain type, resting ECG, exercise angina and the
fasting-glucose flag become Observations of local codes with a ``valueInteger``; a
diagnosis (UCI ``num`` > 0) a Condition coded in SNOMED CT (53741008 Coronary
arteriosclerosis). A ``?`` writes no resource. All events are dated on the index date.
Nothing is downloaded: the files are bundled.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Literal

from medsilo.data.heart_disease import COLUMNS
from medsilo.omop import heart_concepts as hc
from medsilo.omop.heart_disease_cdm import EVENTS, INDEX_DATE

#: FHIR code system of each OMOP vocabulary the hospitals' concepts come from.
SYSTEMS: dict[str, str] = {
    "LOINC": "http://loinc.org",
    "SNOMED": "http://snomed.info/sct",
    "UCUM": "http://unitsofmeasure.org",
    "medsilo": "https://medsilo.org/fhir/CodeSystem/uci-heart-disease",
}
Layout = Literal["ndjson", "files"]


def coding(concept: hc.Concept) -> dict[str, str]:
    return {"system": SYSTEMS[concept.vocabulary], "code": concept.code, "display": concept.name}


def _observation(pid: str, name: str, text: str) -> dict[str, Any]:
    _, concept, unit = EVENTS[name]
    value: dict[str, Any]
    if unit is None:
        value = {"valueInteger": int(float(text))}
    else:
        value = {
            "valueQuantity": {
                "value": float(text),
                "unit": unit.code,
                "system": SYSTEMS["UCUM"],
                "code": unit.code,
            }
        }
    return {
        "resourceType": "Observation",
        "id": f"{pid}-{name}",
        "status": "final",
        "code": {"coding": [coding(concept)], "text": concept.name},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": INDEX_DATE.isoformat(),
        **value,
    }


def patient_bundle(hospital: str, line: int, raw: list[str]) -> dict[str, Any]:
    """The collection Bundle of one file line."""
    field = dict(zip(COLUMNS, (v.strip() for v in raw), strict=True))
    pid = f"{hospital}-{line:04d}"
    age = int(float(field["age"]))
    born = INDEX_DATE.replace(year=INDEX_DATE.year - age)
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": pid,
            "gender": "male" if float(field["sex"]) == 1 else "female",
            "birthDate": born.isoformat(),
        }
    ]
    resources += [_observation(pid, n, field[n]) for n in EVENTS if field[n] != "?"]
    if field["num"] != "?" and float(field["num"]) > 0:
        resources.append(
            {
                "resourceType": "Condition",
                "id": f"{pid}-diagnosis",
                "clinicalStatus": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active"}]},
                "verificationStatus": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "confirmed"}]},
                "code": {"coding": [coding(hc.CORONARY_ARTERIOSCLEROSIS)]},
                "subject": {"reference": f"Patient/{pid}"},
                "onsetDateTime": INDEX_DATE.isoformat(),
            }
        )  # fmt: skip
    return {
        "resourceType": "Bundle",
        "id": pid,
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


def write_hospital(path: Path, hospital: str, dest: Path, layout: Layout = "ndjson") -> int:
    """The hospital file as bundles: ``dest/<hospital>.ndjson`` (one Bundle a line) or
    ``dest/<hospital>/<patient>.json``; returns the number of patients. Everything is built
    before the first file is written."""
    rows = [r for r in csv.reader(path.read_text(encoding="utf-8").splitlines()) if r]
    bundles = [patient_bundle(hospital, i, raw) for i, raw in enumerate(rows, start=1)]
    if layout == "ndjson":
        dest.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(b, separators=(",", ":")) + "\n" for b in bundles)
        (dest / f"{hospital}.ndjson").write_text(lines, encoding="utf-8")
    else:
        folder = dest / hospital
        folder.mkdir(parents=True, exist_ok=True)
        for b in bundles:
            (folder / f"{b['id']}.json").write_text(json.dumps(b, indent=1), encoding="utf-8")
    return len(bundles)


def write_heart_disease_bundles(
    folder: Path, dest: Path, hospitals: tuple[str, ...], layout: Layout = "ndjson"
) -> dict[str, int]:
    """Each hospital's ``processed.<name>.data`` in ``folder`` as bundles under ``dest``."""
    return {h: write_hospital(folder / f"processed.{h}.data", h, dest, layout) for h in hospitals}
