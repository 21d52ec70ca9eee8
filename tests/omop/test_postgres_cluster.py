import psycopg

from medsilo.omop.postgres_cluster import Cluster


def test_the_cluster_answers_queries(postgres: Cluster) -> None:
    with psycopg.connect(postgres.dsn()) as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    assert row is not None and row[0] >= 150000
