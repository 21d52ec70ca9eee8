"""The OMOP concepts the UCI heart-disease hospitals are written with (docs/omop.md).

Standard concepts (``standard_concept = 'S'``) are the OHDSI vocabulary's ids for the LOINC
measurements, SNOMED condition, gender, visit and type concepts. Five UCI fields have no
standard concept (chest-pain type as coded by UCI, resting ECG class, exercise angina flag,
fasting glucose > 120 mg/dL flag, ST depression); they get site-local concepts in the range
OMOP reserves for them (``concept_id`` above 2,000,000,000, vocabulary ``medsilo``),
as a hospital's ETL does for its local codes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Concept:
    concept_id: int
    name: str
    domain: str
    vocabulary: str
    concept_class: str
    code: str
    standard: bool = True


#: ``valid_start_date``, ``valid_end_date`` of every concept written here.
VOCABULARY_DATES = (dt.date(1970, 1, 1), dt.date(2099, 12, 31))

MALE = Concept(8507, "MALE", "Gender", "Gender", "Gender", "M")
FEMALE = Concept(8532, "FEMALE", "Gender", "Gender", "Gender", "F")
OUTPATIENT_VISIT = Concept(9202, "Outpatient Visit", "Visit", "Visit", "Visit", "OP")
EHR = Concept(32817, "EHR", "Type Concept", "Type Concept", "Type Concept", "OMOP4976890")
SYSTOLIC_BP = Concept(
    3004249, "Systolic blood pressure", "Measurement", "LOINC", "Clinical Observation", "8480-6"
)
CHOLESTEROL = Concept(
    3027114,
    "Cholesterol [Mass/volume] in Serum or Plasma",
    "Measurement",
    "LOINC",
    "Lab Test",
    "2093-3",
)
HEART_RATE = Concept(
    3027018, "Heart rate", "Measurement", "LOINC", "Clinical Observation", "8867-4"
)
CORONARY_ARTERIOSCLEROSIS = Concept(
    317576, "Coronary arteriosclerosis", "Condition", "SNOMED", "Clinical Finding", "53741008"
)
MM_HG = Concept(8876, "millimeter mercury column", "Unit", "UCUM", "Unit", "mm[Hg]")
MG_DL = Concept(8840, "milligram per deciliter", "Unit", "UCUM", "Unit", "mg/dL")
PER_MINUTE = Concept(8541, "per minute", "Unit", "UCUM", "Unit", "/min")
MILLIMETER = Concept(8588, "millimeter", "Unit", "UCUM", "Unit", "mm")


def _local(offset: int, name: str, domain: str) -> Concept:
    return Concept(2_000_000_000 + offset, name, domain, "medsilo", "Local", f"uci-{offset}", False)


ST_DEPRESSION = _local(1, "ST depression induced by exercise (UCI oldpeak)", "Measurement")
CHEST_PAIN_TYPE = _local(2, "Chest pain type, UCI code 1-4 (UCI cp)", "Observation")
RESTING_ECG = _local(3, "Resting ECG class, UCI code 0-2 (UCI restecg)", "Observation")
EXERCISE_ANGINA = _local(4, "Exercise induced angina, 1 = yes (UCI exang)", "Observation")
FASTING_GLUCOSE_HIGH = _local(5, "Fasting glucose > 120 mg/dL, 1 = yes (UCI fbs)", "Observation")

ALL: tuple[Concept, ...] = (
    MALE, FEMALE, OUTPATIENT_VISIT, EHR, SYSTOLIC_BP, CHOLESTEROL, HEART_RATE,
    CORONARY_ARTERIOSCLEROSIS, MM_HG, MG_DL, PER_MINUTE, MILLIMETER, ST_DEPRESSION,
    CHEST_PAIN_TYPE, RESTING_ECG, EXERCISE_ANGINA, FASTING_GLUCOSE_HIGH,
)  # fmt: skip

#: Written by the synthetic population (:mod:`medsilo.omop.synthetic_cdm`) beside :data:`ALL`:
#: its earlier inpatient stays and cholesterol recorded in mmol/L.
INPATIENT_VISIT = Concept(9201, "Inpatient Visit", "Visit", "Visit", "Visit", "IP")
MMOL_L = Concept(8753, "millimole per liter", "Unit", "UCUM", "Unit", "mmol/L")


def concept_rows(concepts: tuple[Concept, ...]) -> list[tuple[Any, ...]]:
    """``concept`` table rows (declared column order) for ``concepts``."""
    return [
        (c.concept_id, c.name, c.domain, c.vocabulary, c.concept_class,
         "S" if c.standard else None, c.code, *VOCABULARY_DATES)
        for c in concepts
    ]  # fmt: skip
