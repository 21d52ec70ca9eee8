"""A site's FHIR bundles read, validated and grouped by patient.

A site's bundles are one file or a folder of files, read in name order: a ``*.json`` file holds
one Bundle, a ``*.ndjson`` file one Bundle per line. Every resource is validated by the
maintained ``fhir.resources`` models, from its ``R4B`` package (FHIR 4.3.0): the package has no
R4 (4.0.1) module since version 7, and R4B reads R4's Patient, Observation, Condition and
MedicationStatement unchanged. Only those four resource types are accepted: anything else in a
bundle is a mistake in the site's export, not something to skip silently.

Every problem names the file (and line of an ndjson file), the entry, the resource as
``Type/id`` and the field, and all of a site's problems are reported together: the site fixes
its export once, and nothing is trained from a half-read site.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.reference import Reference
from pydantic import ValidationError

from medsilo.data.base import DataFormatError

#: The resource types a site's bundles may hold, with the model each is validated by.
RESOURCE_MODELS: dict[str, type[Patient | Observation | Condition | MedicationStatement]] = {
    "Patient": Patient,
    "Observation": Observation,
    "Condition": Condition,
    "MedicationStatement": MedicationStatement,
}
BUNDLE_SUFFIXES = (".json", ".ndjson")
MAX_PROBLEMS = 20


class FhirSourceError(DataFormatError):
    """A site's bundles cannot be read or mapped; the message names every problem found."""


@dataclass(frozen=True)
class Located:
    """A validated resource about a patient and where it was read (file, line, entry,
    ``Type/id``)."""

    resource: Observation | Condition | MedicationStatement
    where: str


@dataclass
class PatientRecord:
    """One patient and the resources whose subject it is, in the order they were read."""

    patient: Patient
    where: str
    resources: list[Located] = field(default_factory=list)


def bundle_files(path: Path) -> list[Path]:
    """The bundle files of a site: ``path`` itself, or the folder's files in name order."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FhirSourceError(f"FHIR bundles not found: {path} is neither a file nor a folder")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in BUNDLE_SUFFIXES)
    if not files:
        raise FhirSourceError(f"{path}: no *.json or *.ndjson bundle files")
    return files


def _raw_bundles(path: Path, problems: list[str]) -> Iterator[tuple[str, Any]]:
    """(where, parsed JSON) of each Bundle in the file; unreadable ones become problems."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        problems.append(f"{path}: cannot be read as UTF-8 text ({err})")
        return
    if path.suffix == ".ndjson":
        chunks = [(f"{path} line {n}", line) for n, line in enumerate(text.splitlines(), 1)]
        chunks = [(where, line) for where, line in chunks if line.strip()]
    else:
        chunks = [(str(path), text)]
    for where, chunk in chunks:
        try:
            yield where, json.loads(chunk)
        except json.JSONDecodeError as err:
            problems.append(f"{where}: not valid JSON ({err})")


def _invalid(where: str, err: ValidationError) -> list[str]:
    return [
        f"{where}: field {'.'.join(str(p) for p in e['loc']) or '(resource)'}: {e['msg']}"
        for e in err.errors()
    ]


def _entries(where: str, raw: Any, problems: list[str]) -> Iterator[tuple[str, str | None, Any]]:
    """(where, fullUrl, raw resource) of each entry of a Bundle whose shell is valid."""
    kind = raw.get("resourceType") if isinstance(raw, dict) else type(raw).__name__
    if kind != "Bundle":
        problems.append(f"{where}: expected a Bundle, found resourceType {kind!r}")
        return
    entries = raw.get("entry") or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        problems.append(f"{where}: field entry: must be a list of entry objects")
        return
    shell = {**raw, "entry": [{k: v for k, v in e.items() if k != "resource"} for e in entries]}
    try:
        Bundle.model_validate(shell)
    except ValidationError as err:
        problems += _invalid(where, err)
        return
    for i, entry in enumerate(entries):
        if "resource" in entry:
            yield f"{where} entry {i}", entry.get("fullUrl"), entry["resource"]


def _validated(
    where: str, raw: Any, problems: list[str]
) -> tuple[str, Patient | Observation | Condition | MedicationStatement] | None:
    kind = raw.get("resourceType") if isinstance(raw, dict) else None
    name = f"{where} {kind}/{raw.get('id')}" if isinstance(raw, dict) else where
    model = RESOURCE_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        problems.append(
            f"{name}: resource of unexpected type {kind!r}; a site's bundles may hold "
            f"{', '.join(RESOURCE_MODELS)}"
        )
        return None
    try:
        return name, model.model_validate(raw)
    except ValidationError as err:
        problems += _invalid(name, err)
        return None


def _subject_id(
    reference: Reference | None, full_urls: dict[str, str], where: str, problems: list[str]
) -> str | None:
    """The Patient id a resource's ``subject`` refers to (``Patient/<id>`` or a bundle
    entry's ``fullUrl``)."""
    text = reference.reference if reference is not None else None
    if text is None:
        problems.append(f"{where}: field subject.reference: missing; it must name a Patient")
        return None
    if text in full_urls:
        return full_urls[text]
    kind, _, pid = text.rpartition("/")
    if kind.rsplit("/", 1)[-1] != "Patient" or not pid:
        problems.append(f"{where}: field subject.reference: {text!r} does not name a Patient")
        return None
    return pid


def read_site_bundles(path: Path) -> list[PatientRecord]:
    """Every patient of the site's bundles, in the order read, with its resources; raises
    :class:`FhirSourceError` naming every problem (file, resource, field)."""
    problems: list[str] = []
    patients: dict[str, PatientRecord] = {}
    full_urls: dict[str, str] = {}
    others: list[tuple[str, Observation | Condition | MedicationStatement]] = []
    for file in bundle_files(Path(path)):
        for where, raw in _raw_bundles(file, problems):
            for entry_where, full_url, raw_resource in _entries(where, raw, problems):
                found = _validated(entry_where, raw_resource, problems)
                if found is None:
                    continue
                name, resource = found
                if not isinstance(resource, Patient):
                    others.append((name, resource))
                elif resource.id is None:
                    problems.append(f"{name}: field id: a Patient needs an id to be referred to")
                elif resource.id in patients:
                    problems.append(
                        f"{name}: Patient/{resource.id} is also in {patients[resource.id].where}"
                    )
                else:
                    patients[resource.id] = PatientRecord(resource, name)
                    if full_url is not None:
                        full_urls[full_url] = resource.id
    for name, resource in others:
        pid = _subject_id(resource.subject, full_urls, name, problems)
        if pid is None:
            continue
        record = patients.get(pid)
        if record is None:
            problems.append(f"{name}: field subject.reference: Patient/{pid} is in no bundle")
        else:
            record.resources.append(Located(resource, name))
    if not problems and not patients:
        problems.append(f"{path}: the bundles hold no Patient")
    if problems:
        shown = problems[:MAX_PROBLEMS]
        more = len(problems) - len(shown)
        raise FhirSourceError(
            f"{path}: {len(problems)} problem(s) in the FHIR bundles:\n"
            + "\n".join(f"  - {p}" for p in shown)
            + (f"\n  ... and {more} more" if more else "")
        )
    return list(patients.values())
