"""A read-only site role under PostgreSQL row-level security: consented patients only.

The site's training process connects as a role that may only ``SELECT``, and every table
holding a ``person_id`` carries a policy that shows a row only while that person has a
current consent in ``consent`` (``consented`` and ``valid_until`` unset or not past). The
database enforces it, so no query the site runs (or a bug in it) can read other patients.
The ``concept`` vocabulary holds no patient data and is readable in full.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from medsilo.omop.cdm_tables import CDM_TABLES, PERSON_TABLES


def current_consent(alias: str) -> sql.Composed:
    """The condition a ``consent`` row (as ``alias``) meets while its consent is current."""
    a = sql.Identifier(alias)
    return sql.SQL(
        "{a}.consented AND ({a}.valid_until IS NULL OR {a}.valid_until >= current_date)"
    ).format(a=a)


def create_consent_reader(conn: psycopg.Connection[Any], schema: str, role: str) -> None:
    """Create ``role`` (login, no other rights) reading ``schema`` under consent policies.

    Run once per site by the database owner; one transaction.
    """
    s, r = sql.Identifier(schema), sql.Identifier(role)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS").format(r))
        cur.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, r))
        for table in CDM_TABLES:
            t = sql.SQL("{}.{}").format(s, sql.Identifier(table))
            cur.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(t, r))
            if table not in PERSON_TABLES:
                continue
            cur.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(t))
            if table == "consent":
                rule = current_consent("consent")
            else:
                rule = sql.SQL(
                    "EXISTS (SELECT 1 FROM {}.consent k WHERE k.person_id = {}.person_id AND {})"
                ).format(s, sql.Identifier(table), current_consent("k"))
            cur.execute(
                sql.SQL("CREATE POLICY consented_only ON {} FOR SELECT TO {} USING ({})").format(
                    t, r, rule
                )
            )
