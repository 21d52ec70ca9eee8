"""Row-level security: the site's role reads consented patients only and can write nothing;
a site connecting with a role that can write refuses to start."""

from __future__ import annotations

import psycopg
import pytest

from medsilo.data.schema import load_schema
from medsilo.omop.cohort_spec import load_cohort_spec
from medsilo.omop.postgres_cluster import Cluster
from medsilo.omop.site_checks import OmopSourceError
from medsilo.omop.site_cohort import extract_site
from tests.omop.heart_cdm import EXAMPLES, write_hospitals

DB, SCHEMA, READER = "consent_db", "rls_site", "reader_rls_site"


@pytest.fixture(scope="module")
def cluster(postgres: Cluster) -> Cluster:
    """Cleveland, with person 1's consent withdrawn and person 2's expired."""
    write_hospitals(postgres, DB, {SCHEMA: "cleveland"})
    with psycopg.connect(postgres.dsn(dbname=DB)) as conn:
        conn.execute(f"UPDATE {SCHEMA}.consent SET consented = false WHERE person_id = 1")
        conn.execute(f"UPDATE {SCHEMA}.consent SET valid_until = '2001-01-01' WHERE person_id = 2")
    return postgres


def _extract(cluster: Cluster, user: str) -> int:
    schema = load_schema(EXAMPLES / "heart_schema.yaml")
    spec = load_cohort_spec(EXAMPLES / "heart_cohort.yaml")
    return extract_site("cleveland", cluster.dsn(user, DB), SCHEMA, spec, schema).rows


def test_the_reader_sees_only_patients_with_current_consent(cluster: Cluster) -> None:
    with psycopg.connect(cluster.dsn(dbname=DB)) as owner:
        (everyone,) = owner.execute(f"SELECT count(*) FROM {SCHEMA}.person").fetchone() or (0,)
    with psycopg.connect(cluster.dsn(READER, DB)) as conn:
        for table in ("person", "visit_occurrence", "measurement", "observation", "consent"):
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
    ],
)
def test_the_reader_can_write_nothing(cluster: Cluster, statement: str) -> None:
    with (
        psycopg.connect(cluster.dsn(READER, DB)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(statement)


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
