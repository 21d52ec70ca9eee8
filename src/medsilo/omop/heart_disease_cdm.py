"""The four UCI heart-disease hospitals written into OMOP CDM schemas (one per hospital).

Each file line becomes one person (``person_id`` in file order, so a cohort ordered by
person reproduces the file's row order) with one outpatient visit on :data:`INDEX_DATE`, the
index event. Fields become the events a hospital's ETL would record (concepts:
:mod:`medsilo.omop.heart_concepts`): resting systolic blood pressure, serum cholesterol,
heart rate (the UCI maximum during exercise), ST depression as measurements with UCUM unit
concepts; chest-pain type, resting ECG, exercise angina and the fasting-glucose flag as
observations; the diagnosis (UCI ``num`` > 0) as a coronary arteriosclerosis condition.
A ``?`` (not recorded) writes no event. Birth dates make the age at the index date the file's
age. Every person gets a current consent. Nothing is downloaded: the files are bundled.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import psycopg

from medsilo.data.heart_disease import COLUMNS
from medsilo.omop import heart_concepts as hc
from medsilo.omop.cdm_tables import CDM_TABLES, copy_statement, create_statements

INDEX_DATE = dt.date(1988, 6, 15)  # within the UCI collection years (1981-1988)
#: UCI field -> (CDM table, concept, unit concept or None).
EVENTS: dict[str, tuple[str, hc.Concept, hc.Concept | None]] = {
    "trestbps": ("measurement", hc.SYSTOLIC_BP, hc.MM_HG),
    "chol": ("measurement", hc.CHOLESTEROL, hc.MG_DL),
    "thalach": ("measurement", hc.HEART_RATE, hc.PER_MINUTE),
    "oldpeak": ("measurement", hc.ST_DEPRESSION, hc.MILLIMETER),
    "cp": ("observation", hc.CHEST_PAIN_TYPE, None),
    "restecg": ("observation", hc.RESTING_ECG, None),
    "exang": ("observation", hc.EXERCISE_ANGINA, None),
    "fbs": ("observation", hc.FASTING_GLUCOSE_HIGH, None),
}


def _copy(cur: psycopg.Cursor[Any], schema: str, table: str, rows: list[tuple[Any, ...]]) -> None:
    """COPY ``rows`` (values in the table's declared column order) into ``schema.table``."""
    with cur.copy(copy_statement(schema, table, len(rows[0]))) as copy:
        for row in rows:
            copy.write_row(row)


def write_hospital(conn: psycopg.Connection[Any], schema: str, path: Path) -> int:
    """Create ``schema`` with the CDM tables and write the hospital file into it; returns the
    number of persons. One transaction: a failure leaves no half-written schema."""
    rows = [r for r in csv.reader(path.read_text(encoding="utf-8").splitlines()) if r]
    tables: dict[str, list[tuple[Any, ...]]] = {t: [] for t in CDM_TABLES}
    tables["concept"] = hc.concept_rows(hc.ALL)
    for pid, raw in enumerate(rows, start=1):
        field = dict(zip(COLUMNS, (v.strip() for v in raw), strict=True))
        age = int(float(field["age"]))
        gender = hc.MALE if float(field["sex"]) == 1 else hc.FEMALE
        tables["person"].append(
            (pid, gender.concept_id, INDEX_DATE.year - age, INDEX_DATE.month, INDEX_DATE.day,
             dt.datetime(INDEX_DATE.year - age, INDEX_DATE.month, INDEX_DATE.day), 0, 0)
        )  # fmt: skip
        tables["visit_occurrence"].append(
            (pid, pid, hc.OUTPATIENT_VISIT.concept_id, INDEX_DATE, INDEX_DATE, hc.EHR.concept_id)
        )
        tables["consent"].append((pid, True, None))
        for name, (table, concept, unit) in EVENTS.items():
            if field[name] == "?":
                continue
            event_id = len(tables[table]) + 1
            tables[table].append(
                (event_id, pid, concept.concept_id, INDEX_DATE, hc.EHR.concept_id,
                 field[name], unit.concept_id if unit else None)
            )  # fmt: skip
        if field["num"] != "?" and float(field["num"]) > 0:
            tables["condition_occurrence"].append(
                (len(tables["condition_occurrence"]) + 1, pid,
                 hc.CORONARY_ARTERIOSCLEROSIS.concept_id, INDEX_DATE, hc.EHR.concept_id)
            )  # fmt: skip
    with conn.transaction(), conn.cursor() as cur:
        for statement in create_statements(schema):
            cur.execute(statement)
        for table, table_rows in tables.items():
            if table_rows:
                _copy(cur, schema, table, table_rows)
    return len(rows)


def write_heart_disease_cdm(
    conn: psycopg.Connection[Any], folder: Path, hospitals: tuple[str, ...]
) -> dict[str, int]:
    """Each hospital's ``processed.<name>.data`` in ``folder`` into schema ``<name>``."""
    return {h: write_hospital(conn, h, folder / f"processed.{h}.data") for h in hospitals}
