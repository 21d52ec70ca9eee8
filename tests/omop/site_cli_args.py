"""The ``medsilo site check | report`` arguments of an OMOP site of the test cluster."""

from __future__ import annotations

from medsilo.omop.postgres_cluster import Cluster
from tests.omop.heart_cdm import EXAMPLES


def omop_args(cluster: Cluster, dbname: str, schema: str, user: str | None = None) -> list[str]:
    """Schema ``schema`` of ``dbname``, read by ``reader_<schema>`` unless ``user`` is given."""
    return [
        "--schema",
        str(EXAMPLES / "heart_schema.yaml"),
        "--omop-spec",
        str(EXAMPLES / "heart_cohort.yaml"),
        "--dsn",
        cluster.dsn(user or f"reader_{schema}", dbname),
        "--cdm-schema",
        schema,
    ]


def flat(text: str) -> str:
    """Console output with its line wrapping undone (messages are matched as one line)."""
    return " ".join(text.split())
