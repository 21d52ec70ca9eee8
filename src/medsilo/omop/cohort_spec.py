"""The cohort and feature specification a federation publishes for OMOP sites (YAML).

It is the only thing about OMOP data the coordinator holds: an index event, inclusion and
exclusion criteria, features (OMOP concept ids, a time window around the index date, an
aggregation) each feeding one federation-schema column, and the label. Each site compiles it
to SQL against its own CDM (:mod:`medsilo.omop.cohort_sql`); rows never leave the site.
Windows are in days relative to the index date, both ends included (``[-30, 0]``: the month
before the index visit and its day).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medsilo.config_errors import describe_invalid
from medsilo.data.base import DataFormatError
from medsilo.data.schema import FederationSchema, read_yaml

#: The CDM table, concept column and date column of each event domain.
DOMAINS: dict[str, tuple[str, str, str]] = {
    "measurement": ("measurement", "measurement_concept_id", "measurement_date"),
    "observation": ("observation", "observation_concept_id", "observation_date"),
    "condition": ("condition_occurrence", "condition_concept_id", "condition_start_date"),
    "drug": ("drug_exposure", "drug_concept_id", "drug_exposure_start_date"),
}
EventDomain = Literal["measurement", "observation", "condition", "drug"]
#: Domains with a ``value_as_number`` (the others only count or exist).
VALUED_DOMAINS = ("measurement", "observation")
Aggregate = Literal["last", "first", "min", "max", "mean", "count", "exists"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Strict):
    """Days relative to the index date, both ends included."""

    start: int = 0
    end: int = 0

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.start > self.end:
            raise ValueError(f"window start {self.start} is after its end {self.end}")
        return self


class Criterion(_Strict):
    """A person meets it when at least one event of ``concept_ids`` falls in ``window``."""

    domain: EventDomain
    concept_ids: list[int] = Field(min_length=1)
    window: Window = Window()


class IndexEvent(_Strict):
    """Each person's first visit of one of ``visit_concept_ids`` is the index date."""

    visit_concept_ids: list[int] = Field(min_length=1)


class Feature(_Strict):
    """One federation-schema column: ``age`` (years at the index date), ``gender`` (the
    person's gender concept through ``codes``) or an aggregate of events in a window."""

    to: str = Field(description="the federation-schema column this feature fills")
    source: Literal["age", "gender", "measurement", "observation", "condition", "drug"]
    concept_ids: list[int] = Field(default_factory=list)
    window: Window = Window()
    aggregate: Aggregate = "last"
    codes: dict[int, str] | None = Field(
        None, description="gender only: gender_concept_id -> schema code"
    )

    @model_validator(mode="after")
    def _by_source(self) -> Feature:
        where = f"feature {self.to!r}"
        if self.source in ("age", "gender"):
            if self.concept_ids:
                raise ValueError(f"{where}: source {self.source} takes no concept_ids")
        elif not self.concept_ids:
            raise ValueError(f"{where}: source {self.source} needs concept_ids")
        if (self.source == "gender") != (self.codes is not None):
            raise ValueError(f"{where}: `codes` (gender_concept_id -> code) go with gender only")
        if self.source in ("condition", "drug") and self.aggregate not in ("count", "exists"):
            raise ValueError(
                f"{where}: a {self.source} has no value; aggregate must be count or exists"
            )
        return self


class CohortSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    index: IndexEvent
    inclusion: list[Criterion] = Field(default_factory=list)
    exclusion: list[Criterion] = Field(default_factory=list)
    features: list[Feature] = Field(min_length=1)
    label: Criterion = Field(
        description="label 1 when the person has such an event in the window, else 0"
    )

    def concept_ids(self) -> dict[int, str]:
        """Every concept the spec names -> where it is named (for error messages)."""
        out = {c: "index" for c in self.index.visit_concept_ids}
        for kind, criteria in (("inclusion", self.inclusion), ("exclusion", self.exclusion)):
            for i, crit in enumerate(criteria):
                out |= {c: f"{kind}[{i}]" for c in crit.concept_ids}
        for f in self.features:
            out |= {c: f"feature {f.to!r}" for c in [*f.concept_ids, *(f.codes or {})]}
        return out | {c: "label" for c in self.label.concept_ids}


def check_against_schema(spec: CohortSpec, schema: FederationSchema, where: str) -> None:
    """Every schema column is filled by exactly one feature; the label is binary 0/1."""
    targets = [f.to for f in spec.features]
    problems = []
    for name in sorted(set(targets) - set(schema.column_names)):
        problems.append(f"feature {name!r} is not a column of schema {schema.name!r}")
    for name in sorted({t for t in targets if targets.count(t) > 1}):
        problems.append(f"column {name!r} is filled by more than one feature")
    for name in [c for c in schema.column_names if c not in targets]:
        problems.append(f"schema column {name!r} has no feature")
    if sorted(schema.label.classes) != ["0", "1"]:
        problems.append(
            f"the label is an event's presence (0/1) but schema label classes are "
            f"{schema.label.classes}"
        )
    if problems:
        raise DataFormatError(f"{where}: " + "; ".join(problems))


def load_cohort_spec(path: Path) -> CohortSpec:
    raw = read_yaml(Path(path), "OMOP cohort specification")
    try:
        return CohortSpec.model_validate(raw)
    except ValidationError as err:
        raise DataFormatError(
            describe_invalid(err, f"{path}: invalid cohort specification:")
        ) from err
