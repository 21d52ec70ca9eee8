"""The federation schema: the one column layout every site's tabular data is mapped onto.

The coordinator publishes it; sites never change it. It declares, per column, the type
(numeric, binary, categorical), the unit and allowed range of numeric columns, the codes of
categorical ones, whether the column is required, and which column is the label.

Missing-value policy (kept simple and explicit):
- a *required* column whose missing share at a site exceeds ``max_missing`` refuses the site;
  a required column the site's mapping does not provide at all refuses it too;
- an *optional* column may be unmapped or mostly missing;
- remaining gaps are imputed at the site: numeric and binary columns with the site's median of
  its training rows (the midpoint of the allowed range if the site has no value at all),
  categorical columns as all-zero one-hot (no category);
- rows without a label are dropped (counted in the validation report).

Range policy: a numeric value outside ``range`` is an error unless the share of such values
in the column is at most ``max_out_of_range`` (default 0), in which case they become missing.

Feature layout (the same at every site): the non-label columns in schema order; numeric and
binary give one feature, categorical one feature per code (one-hot, all codes kept).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from medsilo.config_errors import describe_invalid
from medsilo.data.base import DataFormatError
from medsilo.data.units import ANALYTE_FACTORS, UnitError, lookup

ColumnType = Literal["numeric", "binary", "categorical"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _codes_as_text(value: Any) -> Any:
    """YAML reads ``[0, 1]`` as ints; codes are compared as the text a CSV holds."""
    if isinstance(value, list):
        return [str(v) for v in value]
    return value


class SchemaColumn(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    type: ColumnType
    unit: str | None = Field(None, description="numeric only: the federation's unit")
    range: tuple[float, float] | None = Field(None, description="numeric only: allowed [lo, hi]")
    codes: list[str] | None = Field(None, description="categorical only: allowed codes")
    analyte: str | None = Field(None, description="for mg/dL <-> mmol/L conversion")
    required: bool = True
    description: str = ""

    _text_codes = field_validator("codes", mode="before")(_codes_as_text)

    @model_validator(mode="after")
    def _by_type(self) -> SchemaColumn:
        where = f"schema column {self.name!r}"
        if self.type == "numeric":
            if self.unit is None or self.range is None:
                raise ValueError(f"{where}: a numeric column needs `unit` and `range`")
            try:
                lookup(self.unit)
            except UnitError as err:
                raise ValueError(f"{where}: {err}") from None
            lo, hi = self.range
            if not lo < hi:
                raise ValueError(f"{where}: range must be [lo, hi] with lo < hi, got {self.range}")
        elif self.unit is not None or self.range is not None:
            raise ValueError(f"{where}: `unit` and `range` apply to numeric columns only")
        if self.type == "categorical":
            if not self.codes or len(self.codes) < 2 or len(set(self.codes)) != len(self.codes):
                raise ValueError(f"{where}: a categorical column needs >= 2 distinct `codes`")
        elif self.codes is not None:
            raise ValueError(f"{where}: `codes` apply to categorical columns only")
        if self.analyte is not None and self.analyte not in ANALYTE_FACTORS:
            raise ValueError(f"{where}: analyte must be one of {sorted(ANALYTE_FACTORS)}")
        return self

    @property
    def bounds(self) -> tuple[float, float]:
        """The allowed range; binary columns are [0, 1]."""
        if self.type == "binary":
            return (0.0, 1.0)
        assert self.range is not None
        return self.range

    def feature_names(self) -> list[str]:
        if self.type == "categorical":
            assert self.codes is not None
            return [f"{self.name}={c}" for c in self.codes]
        return [self.name]


class SchemaLabel(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    classes: list[str] = Field(min_length=2, description="class codes; index = class id")

    _text_classes = field_validator("classes", mode="before")(_codes_as_text)


class FederationSchema(_Strict):
    name: str
    version: str = "1"
    label: SchemaLabel
    columns: list[SchemaColumn] = Field(min_length=1)
    max_missing: float = Field(0.2, ge=0, le=1, description="max missing share, required cols")
    max_out_of_range: float = Field(
        0.0, ge=0, le=1, description="tolerated share of out-of-range values (set to missing)"
    )

    @model_validator(mode="after")
    def _unique(self) -> FederationSchema:
        names = [c.name for c in self.columns] + [self.label.name]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"schema column names must be unique (label included): {dupes}")
        return self

    def column(self, name: str) -> SchemaColumn:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def feature_names(self) -> list[str]:
        return [f for c in self.columns for f in c.feature_names()]


def read_yaml(path: Path, what: str) -> Any:
    """The parsed file, or a DataFormatError naming it (missing, or not YAML)."""
    if not path.is_file():
        raise DataFormatError(f"{what} not found: {path}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise DataFormatError(f"{path}: not valid YAML ({err})") from err


def load_schema(path: Path) -> FederationSchema:
    raw = read_yaml(Path(path), "federation schema")
    try:
        return FederationSchema.model_validate(raw)
    except ValidationError as err:
        raise DataFormatError(describe_invalid(err, f"{path}: invalid federation schema:")) from err
