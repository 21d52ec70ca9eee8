"""A synthetic OMOP CDM population of any size, for speed measurements (nothing downloaded).

``write_synthetic_cdm(conn, schema, persons, seed)`` creates ``schema`` (the tables of
:mod:`medsilo.omop.cdm_tables`) and fills it with ``persons`` made-up patients shaped like the
UCI heart-disease ones, so the federation's heart-disease specification
(``examples/omop/heart_cohort.yaml``) runs on it unchanged:

- each person has an outpatient visit (the index event) between 2015 and 2019, and some an
  earlier inpatient stay (not an index event);
- at the index visit: systolic blood pressure, cholesterol (one in ten in mmol/L, the rest in
  mg/dL, so the query converts units row by row), two heart-rate readings (the feature takes
  the maximum), ST depression, and the four UCI observations (chest-pain type, resting ECG,
  exercise angina, fasting-glucose flag); a few values are not recorded;
- two older blood-pressure readings per person, outside the feature's window, so the query
  has to pick by date;
- coronary arteriosclerosis within 30 days of the index for a share of persons that rises
  with age, male sex, asymptomatic chest pain, exercise angina and ST depression (the label),
  and years before the index for a few (whom the specification's exclusion removes);
- a current consent for all but one in a hundred.

Rows go in through ``COPY`` (text format, written in blocks), in one transaction, then the
tables are analysed so the planner knows their sizes. Values are drawn with NumPy from
``seed``: the same arguments give the same database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg import sql

from medsilo.omop import heart_concepts as hc
from medsilo.omop.cdm_tables import CDM_TABLES, copy_statement, create_statements

FIRST_INDEX_DATE = dt.date(2015, 1, 1)
INDEX_DAYS = 5 * 365  # index dates spread over five years
CHOLESTEROL_MMOL_SHARE = 0.1
MG_DL_PER_MMOL_L = 38.67  # cholesterol (medsilo.data.units)
MISSING_SHARE = 0.03  # of each recorded value
PRIOR_CAD_SHARE = 0.03  # known coronary disease before the index: excluded
WITHDRAWN_SHARE = 0.01
BLOCK_ROWS = 50_000  # rows per COPY write

CONCEPTS = (*hc.ALL, hc.INPATIENT_VISIT, hc.MMOL_L)

Column = Sequence[Any] | NDArray[Any]


def _text(value: Any) -> str:
    """One value in COPY's text format (``\\N`` is NULL); the values here need no escaping."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "\\N"
    return str(value)


def _copy_columns(cur: psycopg.Cursor[Any], schema: str, table: str, columns: list[Column]) -> int:
    """COPY the rows whose values are ``columns`` (declared order, equal lengths); their count."""
    rows = len(columns[0])
    with cur.copy(copy_statement(schema, table, len(columns))) as copy:
        for start in range(0, rows, BLOCK_ROWS):
            block = zip(*(c[start : start + BLOCK_ROWS] for c in columns), strict=True)
            copy.write("".join("\t".join(map(_text, row)) + "\n" for row in block))
    return rows


def _dates(days: NDArray[np.int64]) -> list[dt.date]:
    return [FIRST_INDEX_DATE + dt.timedelta(days=int(d)) for d in days]


def _birth(index: dt.date, age: int) -> dt.date:
    """The birth date that makes ``age`` the age in whole years on ``index``."""
    if (index.month, index.day) == (2, 29):
        return dt.date(index.year - age, 3, 1)
    return index.replace(year=index.year - age)


def _with_missing(rng: np.random.Generator, values: NDArray[Any]) -> NDArray[np.float64]:
    out = values.astype(np.float64)
    out[rng.random(len(out)) < MISSING_SHARE] = np.nan
    return out


class _Events:
    """The rows of one event table, gathered column by column before one COPY."""

    def __init__(self) -> None:
        self.person: list[NDArray[np.int64]] = []
        self.concept: list[NDArray[np.int64]] = []
        self.day: list[NDArray[np.int64]] = []
        self.value: list[NDArray[np.float64]] = []
        self.unit: list[NDArray[np.float64]] = []

    def add(
        self,
        person: NDArray[np.int64],
        concept: int,
        day: NDArray[np.int64],
        value: NDArray[np.float64] | None = None,
        unit: NDArray[np.float64] | int | None = None,
    ) -> None:
        """Events of ``concept`` for ``person`` on ``day``; a NaN value records no event."""
        keep = np.ones(len(person), bool) if value is None else ~np.isnan(value)
        self.person.append(person[keep])
        self.concept.append(np.full(int(keep.sum()), concept))
        self.day.append(day[keep])
        values = np.full(len(person), np.nan) if value is None else value
        self.value.append(values[keep])
        units = np.broadcast_to(np.asarray(np.nan if unit is None else unit, float), len(person))
        self.unit.append(units[keep])

    def columns(self, valued: bool) -> list[Column]:
        """id, person_id, concept, date, type (+ value, unit): the declared column order."""
        person = np.concatenate(self.person)
        ids = np.arange(1, len(person) + 1)
        out: list[Column] = [
            ids,
            person,
            np.concatenate(self.concept),
            _dates(np.concatenate(self.day)),
            np.full(len(person), hc.EHR.concept_id),
        ]
        if valued:
            units = np.concatenate(self.unit)
            out += [
                np.round(np.concatenate(self.value), 2),
                [None if np.isnan(u) else int(u) for u in units],
            ]
        return out


def _draw(rng: np.random.Generator, n: int, p: Iterable[float], start: int = 0) -> NDArray[Any]:
    probabilities = list(p)
    return rng.choice(np.arange(start, start + len(probabilities)), size=n, p=probabilities)


def write_synthetic_cdm(
    conn: psycopg.Connection[Any], schema: str, persons: int, seed: int = 0
) -> dict[str, int]:
    """Create ``schema`` and write ``persons`` synthetic patients into it; rows per table."""
    rng = np.random.default_rng(seed)
    pid = np.arange(1, persons + 1, dtype=np.int64)
    index_day = rng.integers(0, INDEX_DAYS, persons)
    index_dates = _dates(index_day)
    age = np.clip(np.round(rng.normal(54, 9, persons)), 29, 77).astype(np.int64)
    male = rng.random(persons) < 0.68
    sbp = np.clip(np.round(rng.normal(132, 18, persons)), 80, 220)
    chol = np.clip(np.round(rng.normal(240, 50, persons)), 100, 560)
    hr = np.clip(np.round(rng.normal(150, 23, (2, persons))), 60, 210)
    oldpeak = np.clip(np.round(np.abs(rng.normal(1.0, 1.1, persons)), 1), 0, 6.2)
    cp = _draw(rng, persons, (0.08, 0.17, 0.28, 0.47), start=1)
    restecg = _draw(rng, persons, (0.5, 0.02, 0.48))
    exang = (rng.random(persons) < 0.33).astype(np.int64)
    fbs = (rng.random(persons) < 0.15).astype(np.int64)
    risk = -5.2 + 0.05 * age + 0.9 * male + 0.9 * (cp == 4) + exang + 0.5 * oldpeak
    diseased = rng.random(persons) < 1 / (1 + np.exp(-risk))
    prior_cad = rng.random(persons) < PRIOR_CAD_SHARE
    inpatient = rng.random(persons) < 0.3

    measurement, observation, condition = _Events(), _Events(), _Events()
    measurement.add(
        pid, hc.SYSTOLIC_BP.concept_id, index_day, _with_missing(rng, sbp), hc.MM_HG.concept_id
    )
    in_mmol = rng.random(persons) < CHOLESTEROL_MMOL_SHARE
    chol_value = np.where(in_mmol, chol / MG_DL_PER_MMOL_L, chol)
    chol_unit = np.where(in_mmol, hc.MMOL_L.concept_id, hc.MG_DL.concept_id).astype(float)
    measurement.add(
        pid, hc.CHOLESTEROL.concept_id, index_day, _with_missing(rng, chol_value), chol_unit
    )
    for reading in hr:
        measurement.add(pid, hc.HEART_RATE.concept_id, index_day, reading, hc.PER_MINUTE.concept_id)
    measurement.add(
        pid,
        hc.ST_DEPRESSION.concept_id,
        index_day,
        _with_missing(rng, oldpeak),
        hc.MILLIMETER.concept_id,
    )
    for _ in range(2):  # older readings, outside the feature's window
        before = index_day - rng.integers(30, 1500, persons)
        older = np.clip(np.round(rng.normal(130, 18, persons)), 80, 220)
        measurement.add(pid, hc.SYSTOLIC_BP.concept_id, before, older, hc.MM_HG.concept_id)
    for concept, values in (
        (hc.CHEST_PAIN_TYPE, cp),
        (hc.RESTING_ECG, restecg),
        (hc.EXERCISE_ANGINA, exang),
        (hc.FASTING_GLUCOSE_HIGH, fbs),
    ):
        observation.add(pid, concept.concept_id, index_day, _with_missing(rng, values))
    cad = hc.CORONARY_ARTERIOSCLEROSIS.concept_id
    condition.add(pid[diseased], cad, index_day[diseased] + rng.integers(0, 31, diseased.sum()))
    condition.add(
        pid[prior_cad], cad, index_day[prior_cad] - rng.integers(1, 3650, prior_cad.sum())
    )

    visit_person = np.concatenate([pid, pid[inpatient]])
    visit_day = np.concatenate(
        [index_day, index_day[inpatient] - rng.integers(30, 2000, inpatient.sum())]
    )
    visit_concept = np.concatenate(
        [
            np.full(persons, hc.OUTPATIENT_VISIT.concept_id),
            np.full(inpatient.sum(), hc.INPATIENT_VISIT.concept_id),
        ]
    )
    visit_dates = _dates(visit_day)
    births = [_birth(d, int(a)) for d, a in zip(index_dates, age, strict=True)]
    person_columns: list[Column] = [
        pid,
        np.where(male, hc.MALE.concept_id, hc.FEMALE.concept_id),
        [b.year for b in births],
        [b.month for b in births],
        [b.day for b in births],
        [f"{b.isoformat()} 00:00:00" for b in births],
        np.zeros(persons, np.int64),
        np.zeros(persons, np.int64),
    ]
    tables: dict[str, list[Column]] = {
        "concept": [list(c) for c in zip(*hc.concept_rows(CONCEPTS), strict=True)],
        "person": person_columns,
        "visit_occurrence": [
            np.arange(1, len(visit_person) + 1),
            visit_person,
            visit_concept,
            visit_dates,
            visit_dates,
            np.full(len(visit_person), hc.EHR.concept_id),
        ],
        "condition_occurrence": condition.columns(valued=False),
        "measurement": measurement.columns(valued=True),
        "observation": observation.columns(valued=True),
        "consent": [pid, ["f" if w else "t" for w in rng.random(persons) < WITHDRAWN_SHARE]],
    }
    written: dict[str, int] = {}
    with conn.transaction(), conn.cursor() as cur:
        for statement in create_statements(schema):
            cur.execute(statement)
        for table, columns in tables.items():
            written[table] = _copy_columns(cur, schema, table, columns)
    with conn.cursor() as cur:
        for table in CDM_TABLES:
            name = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            cur.execute(sql.SQL("ANALYZE {}").format(name))
    conn.commit()
    return written
