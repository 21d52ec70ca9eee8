"""The unit-conversion table: exact factors, affine temperatures, precise refusals."""

from __future__ import annotations

import numpy as np
import pytest

from medsilo.data.units import UnitError, compatible_units, converter, lookup


@pytest.mark.parametrize(
    ("source", "target", "analyte", "value", "expected"),
    [
        ("mmol/L", "mg/dL", "cholesterol", 5.0, 193.35),
        ("mg/dL", "mmol/L", "glucose", 90.0, 5.0),
        ("lb", "kg", None, 100.0, 45.359237),
        ("F", "C", None, 98.6, 37.0),
        ("C", "F", None, -40.0, -40.0),
        ("K", "C", None, 273.15, 0.0),
        ("in", "cm", None, 10.0, 25.4),
        ("kPa", "mmHg", None, 16.0, 120.00992),
        ("umol/L", "mg/dL", "creatinine", 88.4, 88.4 * 1e-3 * 11.31),
        ("mg/dl", "MG/DL", None, 3.0, 3.0),
        # Common clinical units: BMI, haemoglobin, troponin, ventilation, gestation, ...
        ("kg/m^2", "kg/m2", None, 24.5, 24.5),
        ("kg / m²", "KG/M2", None, 31.0, 31.0),
        ("g/dL", "g/L", None, 14.0, 140.0),
        ("µg/dL", "mg/dL", None, 100.0, 0.1),
        ("ng/mL", "mg/dL", None, 1000.0, 0.1),
        ("cmH2O", "mmHg", None, 10.0, 7.3555912),
        ("weeks", "days", None, 2.0, 14.0),
        ("hours", "days", None, 36.0, 1.5),
        ("IU/L", "U/L", None, 40.0, 40.0),
        ("beats/min", "bpm", None, 72.0, 72.0),
        ("ft", "cm", None, 6.0, 182.88),
        ("mL", "L", None, 500.0, 0.5),
    ],
)
def test_conversions(
    source: str, target: str, analyte: str | None, value: float, expected: float
) -> None:
    got = converter(source, target, analyte)(np.array([value]))
    assert got[0] == pytest.approx(expected, rel=1e-6)


def test_round_trip_is_identity() -> None:
    v = np.array([3.2, 5.0, 7.9])
    there = converter("mmol/L", "mg/dL", "cholesterol")(v)
    assert np.allclose(converter("mg/dL", "mmol/L", "cholesterol")(there), v)


def test_incompatible_dimensions_say_both() -> None:
    with pytest.raises(UnitError, match="'mg/dL' is a mass concentration and 'years' is a time"):
        converter("mg/dL", "years")


def test_concentration_without_analyte_asks_for_it() -> None:
    with pytest.raises(UnitError, match=r"needs the analyte's molar mass.*cholesterol"):
        converter("mmol/L", "mg/dL")


def test_unknown_unit_lists_known_ones() -> None:
    with pytest.raises(UnitError, match=r"unknown unit 'stone'.*known units: kg"):
        lookup("stone")


def test_compatible_units_cover_both_concentration_kinds_only_with_analyte() -> None:
    assert "mmol/L" in compatible_units("mg/dL", "glucose")
    assert "mmol/L" not in compatible_units("mg/dL")
    assert set(compatible_units("kg")) == {"kg", "g", "lb"}


def test_bmi_is_a_schema_unit_of_its_own() -> None:
    from medsilo.data.schema import SchemaColumn

    column = SchemaColumn(name="bmi", type="numeric", unit="kg/m2", range=(10.0, 80.0))
    assert compatible_units(column.unit or "") == ["kg/m2"]
    with pytest.raises(UnitError, match="'kg' is a mass and 'kg/m2' is a body mass index"):
        converter("kg", "kg/m2")
