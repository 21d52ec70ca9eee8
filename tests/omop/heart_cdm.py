"""The bundled heart-disease hospitals written into a database of the test cluster, each
schema read by its own consent-restricted role (``reader_<hospital>``)."""

from __future__ import annotations

from pathlib import Path

import psycopg

from medsilo.data.heart_disease import COLUMNS, HOSPITALS
from medsilo.data.paths import resolve_root
from medsilo.omop.consent_access import create_consent_reader
from medsilo.omop.heart_disease_cdm import write_hospital
from medsilo.omop.postgres_cluster import Cluster

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "omop"
HEART_FILES = resolve_root(None) / "heart_disease"


def create_database(cluster: Cluster, name: str) -> None:
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def write_hospitals(cluster: Cluster, dbname: str, schemas: dict[str, str]) -> None:
    """``schemas``: CDM schema -> the hospital written into it, with reader ``reader_<schema>``."""
    create_database(cluster, dbname)
    with psycopg.connect(cluster.dsn(dbname=dbname)) as conn:
        for schema, hospital in schemas.items():
            write_hospital(conn, schema, HEART_FILES / f"processed.{hospital}.data")
            create_consent_reader(conn, schema, f"reader_{schema}")


def csv_section(folder: Path) -> dict[str, object]:
    """``data.tabular`` on the bundled files, written into ``folder`` with a header row."""
    sites = []
    for h in HOSPITALS:
        csv = folder / f"{h}.csv"
        csv.write_text(heart_csv(h), encoding="utf-8")
        sites.append({"name": h, "csv": str(csv), "mapping": str(EXAMPLES / "heart_mapping.yaml")})
    return {"schema": str(EXAMPLES / "heart_schema.yaml"), "sites": sites}


def heart_csv(hospital: str) -> str:
    """The hospital's bundled file with a header row (what ``dataset: tabular`` reads)."""
    text = (HEART_FILES / f"processed.{hospital}.data").read_text(encoding="utf-8")
    return ",".join(COLUMNS) + "\n" + text


def omop_section(cluster: Cluster, dbname: str, schemas: list[str]) -> dict[str, object]:
    return {
        "schema": str(EXAMPLES / "heart_schema.yaml"),
        "spec": str(EXAMPLES / "heart_cohort.yaml"),
        "sites": [
            {"name": s, "dsn": cluster.dsn(f"reader_{s}", dbname), "cdm_schema": s} for s in schemas
        ],
    }


__all__ = ["HOSPITALS", "csv_section", "heart_csv", "omop_section", "write_hospitals"]
