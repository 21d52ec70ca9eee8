"""What a site checks in its CDM before extracting anything; each failure names what to fix.

In order: the tables and columns the CDM must have, that the site's role cannot write (nor
bypass row-level security), that every concept the specification names is in ``concept``,
and that every unit the specification's numeric features are recorded in converts to the
federation schema's unit (through the unit table, :mod:`medsilo.data.units`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from medsilo.data.base import DataFormatError
from medsilo.data.schema import FederationSchema
from medsilo.data.units import UnitError, converter
from medsilo.omop.cdm_tables import CDM_TABLES
from medsilo.omop.cohort_spec import DOMAINS, VALUED_DOMAINS, CohortSpec

WRITE_PRIVILEGES = "INSERT, UPDATE, DELETE, TRUNCATE"


class OmopSourceError(DataFormatError):
    """A site's OMOP database cannot give the federation's training matrix; nothing ran."""


def redacted(dsn: str) -> str:
    """The connection string without its password (for messages and reports)."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable connection string>"
    parts.pop("password", None)
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in parts.items()})


def connect(dsn: str, site: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(dsn, connect_timeout=10)
    except psycopg.Error as err:
        raise OmopSourceError(
            f"site {site!r}: cannot connect to PostgreSQL ({redacted(dsn)}): "
            f"{str(err).strip()}; check the site's omop dsn and that the server runs"
        ) from None


def check_tables(conn: psycopg.Connection[Any], schema: str, site: str) -> None:
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s",
        [schema],
    ).fetchall()
    present: dict[str, set[str]] = {}
    for table, column in rows:
        present.setdefault(table, set()).add(column)
    problems = []
    for table, columns in CDM_TABLES.items():
        if table not in present:
            problems.append(f"table {schema}.{table} not found")
            continue
        problems += [
            f"column {schema}.{table}.{c} not found" for c, _ in columns if c not in present[table]
        ]
    if problems:
        raise OmopSourceError(
            f"site {site!r}: the OMOP CDM in schema {schema!r} is incomplete (or the role "
            f"cannot see it): {'; '.join(problems)}"
        )


def refuse_writable(conn: psycopg.Connection[Any], schema: str, site: str) -> None:
    """Refuse a role that could change the CDM or read past row-level security.

    Privileges are asked of the catalogue; a ``DELETE ... WHERE false`` on ``consent`` in a
    rolled-back transaction then probes what the catalogue might not show (it deletes
    nothing either way).
    """
    role, superuser, bypass = conn.execute(
        "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
    ).fetchone() or ("?", True, True)
    problems = []
    if superuser or bypass:
        problems.append("it is a superuser or bypasses row-level security")
    for table in CDM_TABLES:
        qualified = f"{schema}.{table}"
        (writable,) = conn.execute(
            "SELECT has_table_privilege(%s::regclass, %s)",
            [sql.Identifier(schema, table).as_string(conn), WRITE_PRIVILEGES],
        ).fetchone() or (True,)
        if writable:
            problems.append(f"it may write {qualified}")
    (creates,) = conn.execute("SELECT has_schema_privilege(%s, 'CREATE')", [schema]).fetchone() or (
        True,
    )
    if creates:
        problems.append(f"it may create tables in schema {schema}")
    if not problems and _delete_probe(conn, schema):
        problems.append(f"a DELETE on {schema}.consent was accepted")
    if problems:
        raise OmopSourceError(
            f"site {site!r}: refusing to start: role {role!r} can write ({'; '.join(problems)}); "
            "connect as a read-only role under row-level security (docs/omop.md)"
        )


def _delete_probe(conn: psycopg.Connection[Any], schema: str) -> bool:
    statement = sql.SQL("DELETE FROM {}.consent WHERE false").format(sql.Identifier(schema))
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


def check_concepts(conn: psycopg.Connection[Any], schema: str, spec: CohortSpec, site: str) -> None:
    named = spec.concept_ids()
    found = {
        row[0]
        for row in conn.execute(
            sql.SQL("SELECT concept_id FROM {}.concept WHERE concept_id = ANY(%s)").format(
                sql.Identifier(schema)
            ),
            [list(named)],
        )
    }
    unknown = [f"{c} ({where})" for c, where in named.items() if c not in found]
    if unknown:
        raise OmopSourceError(
            f"site {site!r}: concept id(s) not in {schema}.concept: {', '.join(unknown)}; "
            "load the OMOP vocabulary that defines them or correct the specification"
        )


def _units_seen(
    conn: psycopg.Connection[Any], schema: str, source: str, concepts: list[int]
) -> list[tuple[int, int | None, str | None]]:
    """``(concept, unit_concept_id, its concept_code)`` of the events of ``concepts`` in
    ``source``'s table: one scan of the table for every feature it feeds."""
    table, concept_column, _ = DOMAINS[source]
    rows = conn.execute(
        sql.SQL(
            "SELECT DISTINCT e.{c}, e.unit_concept_id, u.concept_code FROM {s}.{t} e "
            "LEFT JOIN {s}.concept u ON u.concept_id = e.unit_concept_id "
            "WHERE e.{c} = ANY(%s)"
        ).format(
            c=sql.Identifier(concept_column), s=sql.Identifier(schema), t=sql.Identifier(table)
        ),
        [concepts],
    ).fetchall()
    return [(int(c), u, code) for c, u, code in rows]


def unit_factors(
    conn: psycopg.Connection[Any],
    schema: str,
    spec: CohortSpec,
    federation: FederationSchema,
    site: str,
) -> dict[int, dict[int, tuple[float, float]]]:
    """Per numeric feature, each ``unit_concept_id`` its events carry -> (scale, offset) into
    the schema unit; an event without a unit, or a unit that does not convert, is refused."""
    numeric = {
        i: f
        for i, f in enumerate(spec.features)
        if f.source in VALUED_DOMAINS
        and federation.column(f.to).type == "numeric"
        and f.aggregate != "count"
    }
    wanted: dict[str, set[int]] = {}
    for f in numeric.values():
        wanted.setdefault(f.source, set()).update(f.concept_ids)
    seen = {src: _units_seen(conn, schema, src, sorted(ids)) for src, ids in wanted.items()}
    out: dict[int, dict[int, tuple[float, float]]] = {}
    problems = []
    for i, f in numeric.items():
        column = federation.column(f.to)
        assert column.unit is not None  # numeric schema columns have one
        table = DOMAINS[f.source][0]
        units = {(u, code) for c, u, code in seen[f.source] if c in f.concept_ids}
        out[i] = {}
        for unit_id, code in sorted(units, key=lambda unit: (unit[0] is None, unit[0] or 0)):
            where = f"{schema}.{table} rows of concept(s) {f.concept_ids} (feature {f.to!r})"
            if unit_id is None or code is None:
                problems.append(
                    f"{where} have unit_concept_id {unit_id}, which names no unit in "
                    f"{schema}.concept"
                )
                continue
            try:
                convert = converter(code, column.unit, column.analyte)
            except UnitError as err:
                problems.append(f"{where}: unit {code!r} (concept {unit_id}): {err}")
                continue
            at_zero, at_one = convert(np.array([0.0, 1.0]))  # conversions are affine
            out[i][unit_id] = (float(at_one - at_zero), float(at_zero))
    if problems:
        raise OmopSourceError(f"site {site!r}: " + "; ".join(problems))
    return out
