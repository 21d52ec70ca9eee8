"""The explicit unit-conversion table used to map a site's columns onto the federation schema.

Hospitals report the same quantity in different units (cholesterol in mg/dL or mmol/L,
weight in kg or lb). Conversions are deliberately few and written out: a unit belongs to one
dimension and maps to that dimension's base unit by ``base = value * scale + offset``.
Between mass concentration (mg/dL) and molar concentration (mmol/L) the factor depends on
the analyte's molar mass, so it is only allowed when the schema column names its analyte:

    mg/dL = mmol/L * factor    cholesterol 38.67, glucose 18.0, triglycerides 88.57,
                               creatinine 11.31 (= 88.4 umol/L per mg/dL)

Unit names are matched case-insensitively ("mg/dl" is "mg/dL"), ignoring spaces; "ug"/"umol"
spell micro (so do "µ" and "μ"), "m^2" and "m²" are "m2", and a few common spellings are
aliases of one unit ("IU/L" is "U/L", "beats/min" is "bpm"). The UCUM codes OMOP's unit
concepts carry are aliases too ("mm[Hg]", "/min", "Cel", "[lb_av]", "a" for years), so an
OMOP site's ``unit_concept_id`` resolves through this same table (medsilo.omop).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Unit:
    name: str
    dimension: str
    scale: float  # base = value * scale + offset
    offset: float = 0.0
    aliases: tuple[str, ...] = ()


_UNITS: tuple[Unit, ...] = (
    Unit("kg", "mass", 1.0),
    Unit("g", "mass", 1e-3),
    Unit("lb", "mass", 0.45359237, aliases=("[lb_av]",)),
    Unit("cm", "length", 1.0),
    Unit("m", "length", 100.0),
    Unit("mm", "length", 0.1),
    Unit("in", "length", 2.54, aliases=("[in_i]",)),
    Unit("ft", "length", 30.48),
    Unit("C", "temperature", 1.0, aliases=("Cel",)),
    Unit("F", "temperature", 5.0 / 9.0, -32.0 * 5.0 / 9.0, aliases=("[degF]",)),
    Unit("K", "temperature", 1.0, -273.15),
    Unit("mmHg", "pressure", 1.0, aliases=("mm[Hg]",)),
    Unit("kPa", "pressure", 7.50062),
    Unit("cmH2O", "pressure", 0.73555912, aliases=("cm[H2O]",)),
    Unit("years", "time", 1.0, aliases=("y", "yr", "a")),
    Unit("months", "time", 1.0 / 12.0, aliases=("mo",)),
    Unit("weeks", "time", 7.0 / 365.25, aliases=("wk",)),
    Unit("days", "time", 1.0 / 365.25, aliases=("d",)),
    Unit("hours", "time", 1.0 / (365.25 * 24.0), aliases=("h",)),
    Unit("bpm", "rate", 1.0, aliases=("/min", "beats/min", "breaths/min")),
    Unit("mg/dL", "mass concentration", 1.0),
    Unit("g/L", "mass concentration", 100.0),
    Unit("mg/L", "mass concentration", 0.1),
    Unit("g/dL", "mass concentration", 1000.0),
    Unit("ug/dL", "mass concentration", 1e-3),
    Unit("ng/mL", "mass concentration", 1e-4),
    Unit("mmol/L", "molar concentration", 1.0),
    Unit("umol/L", "molar concentration", 1e-3),
    Unit("U/L", "enzyme activity", 1.0, aliases=("IU/L",)),
    Unit("kg/m2", "body mass index", 1.0),
    Unit("L", "volume", 1.0),
    Unit("mL", "volume", 1e-3),
    Unit("%", "ratio", 1.0),
    Unit("fraction", "ratio", 100.0),
    Unit("mm/h", "velocity", 1.0),
)


def _spelling(name: str) -> str:
    """The form units are matched in: lower case, no spaces, ASCII micro and squares."""
    text = name.strip().lower().replace(" ", "")
    return text.replace("µ", "u").replace("μ", "u").replace("^2", "2").replace("²", "2")


UNITS: dict[str, Unit] = {_spelling(n): u for u in _UNITS for n in (u.name, *u.aliases)}
#: mg/dL per mmol/L, by analyte (molar mass / 10).
ANALYTE_FACTORS: dict[str, float] = {
    "cholesterol": 38.67,
    "glucose": 18.0,
    "triglycerides": 88.57,
    "creatinine": 11.31,
}
_MASS, _MOLAR = "mass concentration", "molar concentration"


class UnitError(ValueError):
    """A unit is unknown, or two units cannot be converted into each other."""


def known_units() -> list[str]:
    return [u.name for u in _UNITS]


def lookup(name: str) -> Unit:
    unit = UNITS.get(_spelling(name))
    if unit is None:
        raise UnitError(f"unknown unit {name!r}; known units: {', '.join(known_units())}")
    return unit


def converter(
    source: str, target: str, analyte: str | None = None
) -> Callable[[FloatArray], FloatArray]:
    """A function mapping values in ``source`` units to ``target`` units, or a UnitError
    that says why the two cannot be converted."""
    src, dst = lookup(source), lookup(target)
    if src.dimension == dst.dimension:
        return lambda v: ((v * src.scale + src.offset) - dst.offset) / dst.scale
    if {src.dimension, dst.dimension} == {_MASS, _MOLAR}:
        if analyte is None or analyte not in ANALYTE_FACTORS:
            raise UnitError(
                f"converting {src.name} to {dst.name} needs the analyte's molar mass: set "
                f"`analyte:` on the schema column to one of {sorted(ANALYTE_FACTORS)}"
            )
        factor = ANALYTE_FACTORS[analyte]  # mg/dL per mmol/L
        # Through the base units: mass base is mg/dL, molar base is mmol/L.
        to_base = factor if src.dimension == _MOLAR else 1.0 / factor
        return lambda v: (v * src.scale * to_base) / dst.scale
    raise UnitError(
        f"{src.name!r} is a {src.dimension} and {dst.name!r} is a {dst.dimension}; "
        "they cannot be converted into each other"
    )


def compatible_units(target: str, analyte: str | None = None) -> list[str]:
    """Every unit that converts into ``target`` (used to suggest the unit a site meant)."""
    out = []
    for u in _UNITS:
        try:
            converter(u.name, target, analyte)
        except UnitError:
            continue
        out.append(u.name)
    return out
