"""Row-level security: the site's role reads consented patients of its own schema only and can
write nothing; a site connecting with a role that can write refuses to start (checked, in a
deployed site process's loading, and through ``medsilo site check`` in test_site_command)."""

from __future__ import annotations

import psycopg
import pytest

from medsilo.data.own_site import load_own_site
from medsilo.data.schema import load_schema
from medsilo.data.spec import DataConfig
from medsilo.omop.cohort_spec import load_cohort_spec
from medsilo.omop.postgres_cluster import Cluster
from medsilo.omop.site_checks import OmopSourceError
from medsilo.omop.site_cohort import extract_site
from tests.omop.heart_cdm import EXAMPLES, write_hospitals

DB, SCHEMA, READER, OTHER = "consent_db", "rls_site", "reader_rls_site", "rls_other"
#: Every table holding patients' rows (row-level security applies to each).
PATIENT_TABLES = (
    "person",
    "visit_occurrence",
    "condition_occurrence",
    "measurement",
    "observation",
    "drug_exposure",
    "consent",
)


@pytest.fixture(scope="module")
def cluster(postgres: Cluster) -> Cluster:
    """Cleveland, with person 1's consent withdrawn and person 2's expired; persons 1-3 have a
    condition and a drug exposure each (so every table holds rows the reader must not see);
    another site's schema (va) beside it in the same database."""
    write_hospitals(postgres, DB, {SCHEMA: "cleveland", OTHER: "va"})
    with psycopg.connect(postgres.dsn(dbname=DB)) as conn:
        conn.execute(f"UPDATE {SCHEMA}.consent SET consented = false WHERE person_id = 1")
        conn.execute(f"UPDATE {SCHEMA}.consent SET valid_until = '2001-01-01' WHERE person_id = 2")
        for pid in (1, 2, 3):
            conn.execute(
                f"INSERT INTO {SCHEMA}.condition_occurrence VALUES "
                f"({1000 + pid}, {pid}, 201826, '1988-01-01', 32817)"
            )
            conn.execute(
                f"INSERT INTO {SCHEMA}.drug_exposure VALUES "
                f"({pid}, {pid}, 1545958, '1988-01-01', '1988-02-01', 32817)"
            )
    return postgres


def _extract(cluster: Cluster, user: str) -> int:
    schema = load_schema(EXAMPLES / "heart_schema.yaml")
    spec = load_cohort_spec(EXAMPLES / "heart_cohort.yaml")
    return extract_site("cleveland", cluster.dsn(user, DB), SCHEMA, spec, schema).rows


def test_the_reader_sees_only_patients_with_current_consent(cluster: Cluster) -> None:
    with psycopg.connect(cluster.dsn(dbname=DB)) as owner:
        (everyone,) = owner.execute(f"SELECT count(*) FROM {SCHEMA}.person").fetchone() or (0,)
    with psycopg.connect(cluster.dsn(READER, DB)) as conn:
        for table in PATIENT_TABLES:
            ids = {r[0] for r in conn.execute(f"SELECT person_id FROM {SCHEMA}.{table}")}
            assert ids and not ids & {1, 2}, table
        (seen,) = conn.execute(f"SELECT count(*) FROM {SCHEMA}.person").fetchone() or (0,)
        (concepts,) = conn.execute(f"SELECT count(*) FROM {SCHEMA}.concept").fetchone() or (0,)
    assert everyone == 303 and seen == 301
    assert concepts > 0  # the vocabulary holds no patients and stays readable
    assert _extract(cluster, READER) == 301


@pytest.mark.parametrize(
    "statement",
    [
        f"INSERT INTO {SCHEMA}.consent VALUES (1000, true, NULL)",
        f"UPDATE {SCHEMA}.consent SET consented = true WHERE person_id = 1",
        f"DELETE FROM {SCHEMA}.measurement",
        f"TRUNCATE {SCHEMA}.person",
        f"CREATE TABLE {SCHEMA}.copied AS SELECT * FROM {SCHEMA}.person",
        f"UPDATE {SCHEMA}.concept SET concept_name = 'x'",
        f"INSERT INTO {SCHEMA}.drug_exposure VALUES (9, 9, 1, '1988-01-01', '1988-01-01', 1)",
        f"ALTER TABLE {SCHEMA}.measurement DISABLE ROW LEVEL SECURITY",
        f"DROP POLICY consented_only ON {SCHEMA}.person",
        f"DROP TABLE {SCHEMA}.consent",
        "CREATE SCHEMA elsewhere",
        "CREATE TABLE public.elsewhere (x integer)",
        "SET ROLE postgres",
    ],
)
def test_the_reader_can_write_nothing(cluster: Cluster, statement: str) -> None:
    with (
        psycopg.connect(cluster.dsn(READER, DB)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(statement)


@pytest.mark.parametrize("table", (*PATIENT_TABLES, "concept"))
def test_the_reader_cannot_read_another_sites_schema(cluster: Cluster, table: str) -> None:
    with (
        psycopg.connect(cluster.dsn(READER, DB)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(f"SELECT count(*) FROM {OTHER}.{table}")


def test_a_deployed_site_with_a_role_that_can_write_refuses_to_start(cluster: Cluster) -> None:
    """What ``medsilo site start`` loads its data with refuses the owner's connection."""
    section = {
        "schema": str(EXAMPLES / "heart_schema.yaml"),
        "spec": str(EXAMPLES / "heart_cohort.yaml"),
        "sites": [{"name": "cleveland", "dsn": cluster.dsn("postgres", DB), "cdm_schema": SCHEMA}],
    }
    cfg = DataConfig.model_validate({"dataset": "omop", "omop": section})
    with pytest.raises(OmopSourceError, match="refusing to start: role 'postgres' can write"):
        load_own_site(cfg, "cleveland", None, seed=0)


def test_a_superuser_role_is_refused(cluster: Cluster) -> None:
    with pytest.raises(OmopSourceError, match="refusing to start: role 'postgres' can write"):
        _extract(cluster, "postgres")


def test_a_role_that_may_write_one_table_is_refused(cluster: Cluster) -> None:
    with psycopg.connect(cluster.dsn(dbname=DB), autocommit=True) as conn:
        conn.execute("CREATE ROLE careless LOGIN")
        conn.execute(f"GRANT {READER} TO careless")
        conn.execute(f"GRANT INSERT ON {SCHEMA}.drug_exposure TO careless")
    with pytest.raises(OmopSourceError, match=f"may write {SCHEMA}.drug_exposure"):
        _extract(cluster, "careless")
