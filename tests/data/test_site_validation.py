"""Validating a site's CSV against the federation schema through its mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medsilo.data.base import DataFormatError
from medsilo.data.schema import FederationSchema, load_schema
from medsilo.data.site_mapping import SiteMapping, load_mapping
from medsilo.data.site_validation import SiteCheck, check_site
from medsilo.data.synthetic_sites import write_cardio_sites
from tests.data.site_fixtures import (
    EXAMPLES,
    SITES,
    mapping_dict,
    schema_dict,
    write_csv,
    write_yaml,
)

SCHEMA = load_schema(EXAMPLES / "schema.yaml")


@pytest.fixture(scope="module")
def csvs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_cardio_sites(tmp_path_factory.mktemp("csv"), n_per_site=60, seed=1)


def _check(site: str, csv: Path, **changes: dict[str, object] | None) -> SiteCheck:
    raw = mapping_dict(site)
    for local, entry in changes.items():
        if entry is None:
            raw["columns"].pop(local)
        else:
            raw["columns"][local] = entry
    return check_site(SCHEMA, SiteMapping.model_validate(raw), csv, site)


@pytest.mark.parametrize("site", SITES)
def test_every_dialect_maps_onto_the_same_quantities(site: str, csvs: dict[str, Path]) -> None:
    result = _check(site, csvs[site])
    assert result.ok, result.message()
    assert result.values is not None and result.labels is not None
    assert len(result.labels) == 60
    # Whatever the local unit, cholesterol comes out in mg/dL and weight in kg.
    assert 150 < np.nanmean(result.values["cholesterol"]) < 280
    assert 60 < np.nanmean(result.values["weight"]) < 100
    assert 110 < np.nanmean(result.values["systolic_bp"]) < 155
    assert set(np.unique(result.values["chest_pain"][~np.isnan(result.values["chest_pain"])])) <= {
        0.0,
        1.0,
        2.0,
        3.0,
    }


def test_conversion_is_reported(csvs: dict[str, Path]) -> None:
    result = _check("hospital_b", csvs["hospital_b"])
    conv = {c.column: c.conversion for c in result.columns}
    assert conv["cholesterol"] == "mmol/L -> mg/dL" and conv["weight"] == "lb -> kg"
    assert result.ignored_columns == ["ward"]


def test_wrong_unit_is_refused_with_the_unit_it_should_be(csvs: dict[str, Path]) -> None:
    # Hospital B exports mmol/L but its mapping claims mg/dL: every value is out of range.
    result = _check(
        "hospital_b", csvs["hospital_b"], chol_mmol={"to": "cholesterol", "unit": "mg/dL"}
    )
    assert not result.ok
    msg = result.message()
    assert "column 'cholesterol' (local 'chol_mmol')" in msg
    assert "60 of 60 values (100%) are outside the allowed range [80, 450] mg/dL" in msg
    assert "line 2:" in msg
    assert "set `unit: mmol/L` for 'chol_mmol'" in msg


def test_incompatible_unit_is_named(csvs: dict[str, Path]) -> None:
    result = _check(
        "hospital_b", csvs["hospital_b"], chol_mmol={"to": "cholesterol", "unit": "years"}
    )
    msg = result.message()
    assert "local unit 'years' cannot be converted to the schema unit 'mg/dL'" in msg
    assert "'years' is a time and 'mg/dL' is a mass concentration" in msg
    assert "one of ['mg/dL', 'g/L', 'mg/L', 'g/dL', 'ug/dL', 'ng/mL', 'mmol/L', 'umol/L']" in msg


def test_out_of_range_rows_are_listed_by_line(tmp_path: Path) -> None:
    header = ["age", "cholesterol", "weight", "systolic_bp", "sex", "chest_pain", "disease"]
    rows = [["50", "200", "70", "120", "1", "typical", "0"] for _ in range(10)]
    rows[3][0] = "140"  # line 5
    rows[7][0] = "7"  # line 9
    csv = write_csv(tmp_path / "a.csv", header, rows)
    result = _check("hospital_a", csv, smoker=None)
    age = next(c for c in result.columns if c.column == "age")
    assert age.out_of_range == 2
    assert age.out_of_range_examples == ["line 5: 140 years", "line 9: 7 years"]
    assert "2 of 10 values (20%) are outside the allowed range [18, 100] years" in result.message()


def test_tolerated_out_of_range_values_become_missing(tmp_path: Path) -> None:
    raw = schema_dict() | {"max_out_of_range": 0.1}
    schema = FederationSchema.model_validate(raw)
    header = ["age", "cholesterol", "weight", "systolic_bp", "sex", "chest_pain", "disease"]
    rows = [["50", "200", "70", "120", "1", "typical", "0"] for _ in range(20)]
    rows[0][0] = "140"
    csv = write_csv(tmp_path / "a.csv", header, rows)
    raw_map = mapping_dict("hospital_a")
    raw_map["columns"].pop("smoker")
    result = check_site(schema, SiteMapping.model_validate(raw_map), csv)
    assert result.ok and result.values is not None
    assert np.isnan(result.values["age"][0]) and "treated as missing" in result.warnings[0]


def test_unknown_codes_text_and_missing_share(tmp_path: Path) -> None:
    header = ["age", "cholesterol", "weight", "systolic_bp", "sex", "chest_pain", "disease"]
    rows = [["50", "", "70", "120", "1", "typical", "0"] for _ in range(10)]
    rows[0][5] = "crushing"
    rows[1][3] = "120 mmHg"
    rows[2][6] = ""  # unlabelled: dropped, not counted in the rest
    csv = write_csv(tmp_path / "a.csv", header, rows)
    result = _check("hospital_a", csv, smoker=None)
    msg = result.message()
    assert "1 value(s) are not known codes (value: count) {'crushing': 1}" in msg
    assert "1 value(s) are not numbers, e.g. [\"line 3: '120 mmHg'\"]" in msg
    assert "9 of 9 values (100%) are missing; the schema allows at most 20%" in msg
    assert result.unlabelled_rows == 1 and result.rows == 9


def test_mapping_problems_are_all_reported(csvs: dict[str, Path]) -> None:
    result = _check(
        "hospital_b",
        csvs["hospital_b"],
        patient_age=None,  # required column left unmapped
        sbp={"to": "blood_pressure"},  # not a schema column
        weight_lb={"to": "weight", "unit": "lb"},
        height={"to": "age"},  # no such local column
    )
    msg = result.message()
    assert "column 'systolic_bp': this required schema column is not mapped" in msg
    assert "sends local column 'sbp' to 'blood_pressure', which the schema does not have" in msg
    assert "names local column 'height' but the CSV has no such column" in msg


def test_missing_csv_is_an_issue_not_a_crash(tmp_path: Path) -> None:
    result = _check("hospital_a", tmp_path / "nope.csv")
    assert not result.ok and "CSV not found" in result.message()


def test_schema_validation_names_the_column(tmp_path: Path) -> None:
    raw = schema_dict()
    raw["columns"][1] = {"name": "cholesterol", "type": "numeric", "unit": "mg/dL"}
    with pytest.raises(DataFormatError, match="'cholesterol': a numeric column needs `unit`"):
        load_schema(write_yaml(tmp_path / "s.yaml", raw))
    raw["columns"][1] = {
        "name": "cholesterol",
        "type": "numeric",
        "unit": "furlong",
        "range": [1, 2],
    }
    with pytest.raises(DataFormatError, match="unknown unit 'furlong'"):
        load_schema(write_yaml(tmp_path / "s.yaml", raw))


def test_binary_columns_accept_true_false_and_yes_no(tmp_path: Path) -> None:
    header = [
        "age",
        "cholesterol",
        "weight",
        "systolic_bp",
        "sex",
        "chest_pain",
        "smoker",
        "disease",
    ]
    spelled = ["True", "false", "YES", "no", "1", "0.0", "yes", "FALSE"]
    rows = [["50", "200", "70", "120", s, "typical", s, "0"] for s in spelled]
    result = _check("hospital_a", write_csv(tmp_path / "a.csv", header, rows))
    assert result.ok, result.message()
    assert result.values is not None
    assert result.values["sex"].tolist() == [1, 0, 1, 0, 1, 0, 1, 0]
    assert result.values["smoker"].tolist() == [1, 0, 1, 0, 1, 0, 1, 0]


def test_yes_no_spellings_are_for_binary_columns_only(tmp_path: Path) -> None:
    header = ["age", "cholesterol", "weight", "systolic_bp", "sex", "chest_pain", "disease"]
    rows = [["50", "200", "70", "120", "maybe", "yes", "0"] for _ in range(4)]
    result = _check("hospital_a", write_csv(tmp_path / "a.csv", header, rows), smoker=None)
    msg = result.message()
    assert "column 'sex': 4 value(s) are not known codes (value: count) {'maybe': 4}" in msg
    assert "e.g. [\"line 2: 'maybe'\"" in msg
    assert "column 'chest_pain': 4 value(s) are not known codes (value: count) {'yes': 4}" in msg


def test_unquoted_yes_no_codes_in_a_mapping_are_refused(tmp_path: Path) -> None:
    """YAML reads `{yes: 1}` as `{True: 1}`; accepting it would match no CSV cell."""
    path = tmp_path / "m.yaml"
    path.write_text("columns:\n  dx: {to: disease, codes: {yes: 1, no: 0}}\n")
    with pytest.raises(DataFormatError) as err:
        load_mapping(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: invalid site mapping:\n  - columns.dx.codes: ")
    assert 'quote the code as the CSV writes it, e.g. {"yes": 1, "no": 0}' in msg
    assert "errors.pydantic.dev" not in msg


def test_schema_errors_are_one_line_per_problem(tmp_path: Path) -> None:
    raw = schema_dict()
    raw["columns"][0] = {"name": "age", "type": "numeric", "unit": "years", "range": [9, 1]}
    raw["max_missing"] = 2
    with pytest.raises(DataFormatError) as err:
        load_schema(write_yaml(tmp_path / "s.yaml", raw))
    lines = str(err.value).splitlines()
    assert lines[0] == f"{tmp_path / 's.yaml'}: invalid federation schema:"
    assert sorted(lines[1:]) == [
        "  - columns.0: schema column 'age': range must be [lo, hi] with lo < hi, got (9.0, 1.0)",
        "  - max_missing: Input should be less than or equal to 1 (got 2)",
    ]
