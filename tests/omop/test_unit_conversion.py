"""Units and ranges. A site recording cholesterol in mmol/L (UCUM concept) for some patients
and in mg/dL for others is converted row by row to the schema's mg/dL, through the unit table,
before aggregating; a value outside the schema's range is named."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from medsilo.data.schema import load_schema
from medsilo.data.units import lookup
from medsilo.omop.cohort_spec import load_cohort_spec
from medsilo.omop.postgres_cluster import Cluster
from medsilo.omop.site_checks import OmopSourceError
from medsilo.omop.site_cohort import extract_site
from tests.omop.heart_cdm import EXAMPLES, write_hospitals

DB = "units_db"


@pytest.fixture(scope="module")
def cluster(postgres: Cluster) -> Cluster:
    """``mg`` as written; ``mixed`` with odd persons' cholesterol in mmol/L; ``wild`` with
    one blood pressure of 900 mmHg."""
    write_hospitals(postgres, DB, {"mg": "hungarian", "mixed": "hungarian", "wild": "hungarian"})
    with psycopg.connect(postgres.dsn(dbname=DB)) as conn:
        conn.execute(
            "UPDATE wild.measurement SET value_as_number = 900 "
            "WHERE measurement_concept_id = 3004249 AND person_id = 1"
        )
        conn.execute(
            "INSERT INTO mixed.concept VALUES (8753, 'millimole per liter', 'Unit', 'UCUM', "
            "'Unit', 'S', 'mmol/L', '1970-01-01', '2099-12-31')"
        )
        conn.execute(
            "UPDATE mixed.measurement SET unit_concept_id = 8753, "
            "value_as_number = value_as_number / 38.67 "
            "WHERE measurement_concept_id = 3027114 AND person_id % 2 = 1"
        )
    return postgres


def test_mixed_units_are_converted_to_the_schema_unit(cluster: Cluster) -> None:
    schema = load_schema(EXAMPLES / "heart_schema.yaml")
    spec = load_cohort_spec(EXAMPLES / "heart_cohort.yaml")
    as_mg, mixed = (
        extract_site(s, cluster.dsn(f"reader_{s}", DB), s, spec, schema) for s in ("mg", "mixed")
    )
    assert as_mg.values is not None and mixed.values is not None
    np.testing.assert_allclose(mixed.values["chol"], as_mg.values["chol"], rtol=1e-9)
    np.testing.assert_array_equal(mixed.values["age"], as_mg.values["age"])


def test_ucum_codes_resolve_in_the_unit_table() -> None:
    assert lookup("mm[Hg]").name == "mmHg"
    assert lookup("/min").name == "bpm"
    assert lookup("Cel").name == "C"
    assert lookup("a").name == "years"


def test_a_value_outside_the_schema_range_is_named(cluster: Cluster) -> None:
    schema = load_schema(EXAMPLES / "heart_schema.yaml")
    spec = load_cohort_spec(EXAMPLES / "heart_cohort.yaml")
    with pytest.raises(OmopSourceError, match=r"feature 'trestbps' \(measurement 3004249\): 1 "):
        extract_site("wild", cluster.dsn("reader_wild", DB), "wild", spec, schema)
