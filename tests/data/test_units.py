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
