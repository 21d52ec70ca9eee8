"""The feature specification a federation publishes for FHIR sites (YAML): which coded
resources fill which federation-schema column, and which give the label.

Codes are written as FHIR search tokens, ``system|code`` (``http://loinc.org|2093-3``): a
resource matches a feature when any of its codings has one of the feature's tokens. A
patient's features come from all of its resources in the site's bundles; its **index date**
is the date of its earliest dated Observation (``effectiveDateTime``; a partial date counts
from its first day), the date ``age`` is counted to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medsilo.config_errors import describe_invalid
from medsilo.data.base import DataFormatError
from medsilo.data.schema import FederationSchema, read_yaml

CodeToken = Annotated[str, Field(pattern=r"^[^|\s]+\|[^|\s]+$", description="system|code")]
Source = Literal["age", "gender", "observation", "condition", "medication"]
Aggregate = Literal["last", "first", "min", "max", "mean", "count", "exists"]
#: Aggregates that combine several numbers into one (numeric schema columns only).
NUMERIC_AGGREGATES = ("min", "max", "mean")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FhirFeature(_Strict):
    """One schema column: ``age`` (whole years from ``Patient.birthDate`` to the index date),
    ``gender`` (``Patient.gender`` through ``values``), or the patient's resources of
    ``codes`` aggregated: an Observation's value (``last``/``first`` by effective date,
    ``min``/``max``/``mean``), or how many there are (``count``, ``exists``: 1 or 0)."""

    to: str = Field(description="the federation-schema column this feature fills")
    source: Source
    codes: list[CodeToken] = Field(default_factory=list)
    aggregate: Aggregate = "last"
    values: dict[str, str] | None = Field(
        None,
        description="gender: Patient.gender -> schema code; observation: a "
        "valueCodeableConcept's system|code -> schema code",
    )

    @model_validator(mode="after")
    def _by_source(self) -> FhirFeature:
        where = f"feature {self.to!r}"
        if self.source in ("age", "gender"):
            if self.codes:
                raise ValueError(f"{where}: source {self.source} takes no codes")
        elif not self.codes:
            raise ValueError(f"{where}: source {self.source} needs codes (system|code)")
        if self.source == "gender" and self.values is None:
            raise ValueError(f"{where}: gender needs `values` (Patient.gender -> schema code)")
        if self.source not in ("gender", "observation") and self.values is not None:
            raise ValueError(f"{where}: `values` apply to gender and observation features")
        if self.source in ("condition", "medication") and self.aggregate not in (
            "count",
            "exists",
        ):
            raise ValueError(
                f"{where}: a {self.source} has no value; aggregate must be count or exists"
            )
        return self


class FhirLabel(_Strict):
    """Label 1 when the patient has a resource of ``codes`` in ``source``, else 0."""

    source: Literal["condition", "medication", "observation"] = "condition"
    codes: list[CodeToken] = Field(min_length=1)


class FhirFeatureSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    features: list[FhirFeature] = Field(min_length=1)
    label: FhirLabel


def check_against_schema(spec: FhirFeatureSpec, schema: FederationSchema, where: str) -> None:
    """Each schema column has exactly one feature, of an aggregate its type can hold; the
    label is a presence (schema classes 0/1)."""
    problems = []
    filled = [f.to for f in spec.features]
    for f in spec.features:
        if f.to not in schema.column_names:
            problems.append(f"feature {f.to!r} is not a column of schema {schema.name!r}")
        elif filled.count(f.to) > 1:
            problems.append(f"column {f.to!r} is filled by {filled.count(f.to)} features")
        elif f.aggregate in NUMERIC_AGGREGATES and schema.column(f.to).type != "numeric":
            problems.append(
                f"feature {f.to!r}: aggregate {f.aggregate} needs a numeric column, "
                f"{f.to!r} is {schema.column(f.to).type}"
            )
    problems += [f"schema column {c!r} has no feature" for c in schema.column_names
                 if c not in filled]  # fmt: skip
    if sorted(schema.label.classes) != ["0", "1"]:
        problems.append(
            f"the label is a resource's presence (0/1) but schema label classes are "
            f"{schema.label.classes}"
        )
    if problems:
        raise DataFormatError(f"{where}: " + "; ".join(dict.fromkeys(problems)))


def load_feature_spec(path: Path) -> FhirFeatureSpec:
    raw = read_yaml(Path(path), "FHIR feature specification")
    try:
        return FhirFeatureSpec.model_validate(raw)
    except ValidationError as err:
        raise DataFormatError(
            describe_invalid(err, f"{path}: invalid FHIR feature specification:")
        ) from err
