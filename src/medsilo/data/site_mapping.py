"""A site's mapping file: its local CSV column names, units and codes -> the federation schema.

Example (``examples/tabular/mapping_b.yaml``)::

    site: hospital_b
    missing_values: ["", "NA", "?"]
    columns:
      chol_mmol: {to: cholesterol, unit: mmol/L}     # converted to the schema's mg/dL
      weight_lb: {to: weight, unit: lb}
      gender: {to: sex, codes: {M: 1, F: 0}}         # local code -> schema code
      dx: {to: disease, codes: {yes: "1", no: "0"}}  # the label is mapped like any column

A numeric column without ``unit`` is taken to be in the schema's unit. A categorical or
label column without ``codes`` must already use the schema's codes. Local columns that the
mapping does not name are ignored (and listed in the validation report).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from medsilo.config_errors import describe_invalid
from medsilo.data.base import DataFormatError
from medsilo.data.schema import read_yaml

DEFAULT_MISSING = ("", "NA", "N/A", "NaN", "nan", "?", "null", "NULL")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnMapping(_Strict):
    to: str = Field(description="the schema column (or the schema's label) this column feeds")
    unit: str | None = Field(None, description="the local unit of a numeric column")
    codes: dict[str, str] | None = Field(None, description="local code -> schema code")

    @field_validator("codes", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            if any(isinstance(k, bool) for k in value):
                # YAML reads unquoted yes/no/true/false/on/off as booleans: which word the
                # CSV holds is lost, and a silent "True" would match none of them.
                raise ValueError(
                    "a local code was read as true/false: YAML turns unquoted yes, no, true, "
                    "false, on and off into booleans; quote the code as the CSV writes it, "
                    'e.g. {"yes": 1, "no": 0}'
                )
            return {str(k): str(v) for k, v in value.items()}
        return value


class SiteMapping(_Strict):
    site: str | None = None
    missing_values: list[str] = Field(default_factory=lambda: list(DEFAULT_MISSING))
    columns: dict[str, ColumnMapping] = Field(min_length=1, description="local column -> mapping")

    def local_for(self, schema_column: str) -> str | None:
        """The local column feeding ``schema_column`` (validation ensures at most one)."""
        for local, m in self.columns.items():
            if m.to == schema_column:
                return local
        return None


def load_mapping(path: Path) -> SiteMapping:
    raw = read_yaml(Path(path), "site mapping")
    try:
        return SiteMapping.model_validate(raw)
    except ValidationError as err:
        raise DataFormatError(describe_invalid(err, f"{path}: invalid site mapping:")) from err
