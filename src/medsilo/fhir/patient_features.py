"""Codes to features: each patient's resources become one row of schema-column text cells.

The row is what a CSV export of the patient would hold, under the schema's column names, so
the rest (range and code checks, missing shares, the label's classes, the site check's
table) is the CSV sites' validation (:func:`medsilo.data.site_validation.check_table`).
What only FHIR has is checked here, per resource: a resource without a ``system|code``, an
Observation value the feature's column cannot hold, a Quantity without a unit, or with a
unit the unit table (:mod:`medsilo.data.units`, where UCUM codes are aliases) does not know
or cannot convert to the schema's unit. Every resource must be coded, used or not: an
uncoded one is a broken export.

Units: a feature's quantities at a site are written in the site's most common unit for it,
which becomes the column's local unit, so the conversion to the schema unit is the CSV
sites' (a value recorded in another unit is converted to that one first). Resources recorded
in error are left out: an Observation with status ``entered-in-error`` or ``cancelled``, a
Condition whose verification is ``entered-in-error`` or ``refuted``, a MedicationStatement
``entered-in-error`` or ``not-taken``. An Observation without a value (a
``dataAbsentReason``) is a missing value.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

import numpy as np
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from medsilo.data.schema import FederationSchema, SchemaColumn
from medsilo.data.site_mapping import ColumnMapping, SiteMapping
from medsilo.data.site_validation import SiteTable
from medsilo.data.units import UnitError, converter, lookup
from medsilo.fhir.bundle_reading import MAX_PROBLEMS, FhirSourceError, Located, PatientRecord
from medsilo.fhir.feature_spec import FhirFeature, FhirFeatureSpec

UCUM = "http://unitsofmeasure.org"
MISSING = ""
_VER_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status|"
_NOT_IN_USE = {
    "observation": {"entered-in-error", "cancelled"},
    "condition": {_VER_STATUS + "entered-in-error", _VER_STATUS + "refuted"},
    "medication": {"entered-in-error", "not-taken"},
}


@dataclass(frozen=True)
class Coded:
    """A resource in use, its source (observation, condition, medication) and its codes."""

    item: Located
    source: str
    tokens: frozenset[str]
    order: int


@dataclass(frozen=True)
class _Value:
    """One Observation's value: a number in ``unit`` (numeric columns) or a code's text."""

    number: float | None
    text: str | None
    unit: str | None
    when: tuple[dt.date, int]  # effective day (earliest when absent), then reading order


def tokens(concept: CodeableConcept | None) -> list[str]:
    """``system|code`` of each coding that has both."""
    codings = concept.coding if concept is not None and concept.coding else []
    return [f"{c.system}|{c.code}" for c in codings if c.system and c.code]


def day(value: object) -> dt.date | None:
    """A FHIR date or dateTime as a day; a partial date (``1988``, ``1988-06``) counts from
    its first day."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        parts = [int(p) for p in value.split("-")[:3]]
        return dt.date(*parts, *[1] * (3 - len(parts)))
    return None


def _coded(record: PatientRecord, problems: list[str]) -> list[Coded]:
    """The patient's resources in use; an uncoded resource is a problem."""
    out = []
    for order, item in enumerate(record.resources):
        r = item.resource
        if isinstance(r, MedicationStatement):
            source, field, status = "medication", "medicationCodeableConcept.coding", r.status
            found = tokens(r.medicationCodeableConcept)
        elif isinstance(r, Condition):
            source, field, found = "condition", "code.coding", tokens(r.code)
            status = next(iter(tokens(r.verificationStatus)), None)
        else:
            source, field, found, status = "observation", "code.coding", tokens(r.code), r.status
        if not found:
            problems.append(f"{item.where}: field {field}: no coding with a system and a code")
        elif status not in _NOT_IN_USE[source]:
            out.append(Coded(item, source, frozenset(found), order))
    return out


def _matching(resources: list[Coded], source: str, codes: list[str]) -> list[Coded]:
    wanted = set(codes)
    return [c for c in resources if c.source == source and c.tokens & wanted]


def _observation_value(
    c: Coded, f: FhirFeature, column: SchemaColumn, problems: list[str]
) -> _Value | None:
    """The value of an Observation for feature ``f``; None when it has none or is wrong."""
    obs = c.item.resource
    assert isinstance(obs, Observation)
    when = (day(obs.effectiveDateTime) or dt.date.min, c.order)
    where = f"{c.item.where} (feature {f.to!r})"
    q = obs.valueQuantity
    if column.type == "numeric":
        if q is None or q.value is None:
            other = _other_value(obs)
            if other is not None:
                problems.append(
                    f"{where}: field {other}: a numeric feature needs a valueQuantity with a unit"
                )
            return None
        unit = q.code if q.code and q.system in (None, UCUM) else q.unit
        if not unit:
            problems.append(f"{where}: field valueQuantity.code: the quantity has no unit")
            return None
        try:
            name = lookup(unit).name
            converter(name, column.unit or name, column.analyte)
        except UnitError as err:
            problems.append(f"{where}: field valueQuantity.code: unit {unit!r}: {err}")
            return None
        return _Value(float(q.value), None, name, when)
    if obs.valueInteger is not None:
        text = str(obs.valueInteger)
    elif obs.valueBoolean is not None:
        text = "1" if obs.valueBoolean else "0"
    elif obs.valueCodeableConcept is not None:
        found = tokens(obs.valueCodeableConcept)
        known = [t for t in found if f.values and t in f.values]
        text = next(iter(known or found), MISSING)
    elif obs.valueString is not None:
        text = obs.valueString
    elif q is not None and q.value is not None:
        text = repr(float(q.value))
    else:
        other = _other_value(obs)
        if other is not None:
            problems.append(
                f"{where}: field {other}: a {column.type} feature takes valueInteger, "
                "valueBoolean, valueCodeableConcept, valueString or valueQuantity"
            )
        return None
    return _Value(None, text, None, when)


def _other_value(obs: Observation) -> str | None:
    """The name of the Observation's value field when it is not a Quantity."""
    kinds = ("Integer", "Boolean", "CodeableConcept", "String", "Range", "Ratio", "SampledData",
             "Time", "DateTime", "Period")  # fmt: skip
    return next((f"value{k}" for k in kinds if getattr(obs, f"value{k}") is not None), None)


def _aggregate(
    values: list[_Value], f: FhirFeature, site_unit: str | None, analyte: str | None
) -> str:
    if not values:
        return MISSING
    if site_unit is None:  # text values: last or first only (checked against the schema)
        chosen = (
            min(values, key=lambda v: v.when)
            if f.aggregate == "first"
            else max(values, key=lambda v: v.when)
        )
        return chosen.text or MISSING
    numbers = []
    for v in values:
        assert v.number is not None and v.unit is not None
        x = v.number
        if v.unit != site_unit:
            x = float(converter(v.unit, site_unit, analyte)(np.array([x]))[0])
        numbers.append((v.when, x))
    if f.aggregate == "first":
        return repr(min(numbers)[1])
    if f.aggregate == "last":
        return repr(max(numbers)[1])
    xs = [x for _, x in numbers]
    return repr({"min": min, "max": max}.get(f.aggregate, lambda a: sum(a) / len(a))(xs))


def _age(patient: Patient, resources: list[Coded]) -> str:
    """Whole years from the birth date to the index date (the earliest dated Observation)."""
    born = day(patient.birthDate)
    dates = [
        day(c.item.resource.effectiveDateTime)
        for c in resources
        if isinstance(c.item.resource, Observation)
    ]
    seen = [d for d in dates if d is not None]
    if born is None or not seen:
        return MISSING
    index = min(seen)
    return str(index.year - born.year - ((index.month, index.day) < (born.month, born.day)))


def patient_table(
    records: list[PatientRecord], spec: FhirFeatureSpec, schema: FederationSchema, where: str
) -> tuple[SiteTable, SiteMapping]:
    """One row per patient (schema columns, then the label) and the mapping that reads it;
    raises :class:`FhirSourceError` naming each resource the features cannot use."""
    problems: list[str] = []
    coded = [_coded(r, problems) for r in records]
    columns: dict[str, list[str]] = {}
    mapping: dict[str, ColumnMapping] = {}
    for f in spec.features:
        column = schema.column(f.to)
        if f.source == "age":
            cells = [_age(r.patient, c) for r, c in zip(records, coded, strict=True)]
            mapping[f.to] = ColumnMapping(to=f.to, unit="years")
        elif f.source == "gender":
            cells = [r.patient.gender or MISSING for r in records]
            mapping[f.to] = ColumnMapping(to=f.to, codes=f.values)
        elif f.source != "observation" or f.aggregate in ("count", "exists"):
            counts = [len(_matching(c, f.source, f.codes)) for c in coded]
            cells = [str(n) if f.aggregate == "count" else str(int(n > 0)) for n in counts]
            mapping[f.to] = ColumnMapping(to=f.to, unit=column.unit)
        else:
            per_patient = [
                [v for m in _matching(c, "observation", f.codes)
                 if (v := _observation_value(m, f, column, problems)) is not None]
                for c in coded
            ]  # fmt: skip
            units = Counter(v.unit for vs in per_patient for v in vs if v.unit is not None)
            site_unit = units.most_common(1)[0][0] if units else None
            if column.type == "numeric":
                site_unit = site_unit or column.unit
            cells = [_aggregate(vs, f, site_unit, column.analyte) for vs in per_patient]
            codes = f.values if column.type != "numeric" else None
            mapping[f.to] = ColumnMapping(to=f.to, unit=site_unit, codes=codes)
        columns[f.to] = cells
    label = schema.label.name
    columns[label] = [
        str(int(bool(_matching(c, spec.label.source, spec.label.codes)))) for c in coded
    ]
    mapping[label] = ColumnMapping(to=label)
    if problems:
        shown = problems[:MAX_PROBLEMS]
        more = (
            f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        )
        raise FhirSourceError(
            f"{where}: {len(problems)} resource(s) cannot fill the features:\n"
            + "\n".join(f"  - {p}" for p in shown)
            + more
        )
    header = list(columns)
    rows = [list(row) for row in zip(*columns.values(), strict=True)]
    lines = [f"Patient/{r.patient.id}" for r in records]
    return SiteTable(header, rows, lines), SiteMapping(missing_values=[MISSING], columns=mapping)
