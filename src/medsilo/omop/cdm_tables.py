"""The OMOP CDM v5.4 tables medsilo reads, with their standard column names and types.

Only the columns the cohort SQL uses (and the identifiers that make a row meaningful) are
declared; a real CDM has more, which is fine: :func:`medsilo.omop.site_checks.check_tables`
asks for these columns only. The same declaration writes the DDL for the generator and the
tests, so what is created and what is checked cannot drift apart. ``consent`` is medsilo's
own table (not part of the CDM): row-level security exposes a person only while it holds a
current consent (docs/omop.md).
"""

from __future__ import annotations

from psycopg import sql

CDM_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "concept": (
        ("concept_id", "integer NOT NULL PRIMARY KEY"),
        ("concept_name", "varchar(255) NOT NULL"),
        ("domain_id", "varchar(20) NOT NULL"),
        ("vocabulary_id", "varchar(20) NOT NULL"),
        ("concept_class_id", "varchar(20) NOT NULL"),
        ("standard_concept", "varchar(1) NULL"),
        ("concept_code", "varchar(50) NOT NULL"),
        ("valid_start_date", "date NOT NULL"),
        ("valid_end_date", "date NOT NULL"),
    ),
    "person": (
        ("person_id", "bigint NOT NULL PRIMARY KEY"),
        ("gender_concept_id", "integer NOT NULL"),
        ("year_of_birth", "integer NOT NULL"),
        ("month_of_birth", "integer NULL"),
        ("day_of_birth", "integer NULL"),
        ("birth_datetime", "timestamp NULL"),
        ("race_concept_id", "integer NOT NULL"),
        ("ethnicity_concept_id", "integer NOT NULL"),
    ),
    "visit_occurrence": (
        ("visit_occurrence_id", "bigint NOT NULL PRIMARY KEY"),
        ("person_id", "bigint NOT NULL"),
        ("visit_concept_id", "integer NOT NULL"),
        ("visit_start_date", "date NOT NULL"),
        ("visit_end_date", "date NOT NULL"),
        ("visit_type_concept_id", "integer NOT NULL"),
    ),
    "condition_occurrence": (
        ("condition_occurrence_id", "bigint NOT NULL PRIMARY KEY"),
        ("person_id", "bigint NOT NULL"),
        ("condition_concept_id", "integer NOT NULL"),
        ("condition_start_date", "date NOT NULL"),
        ("condition_type_concept_id", "integer NOT NULL"),
    ),
    "measurement": (
        ("measurement_id", "bigint NOT NULL PRIMARY KEY"),
        ("person_id", "bigint NOT NULL"),
        ("measurement_concept_id", "integer NOT NULL"),
        ("measurement_date", "date NOT NULL"),
        ("measurement_type_concept_id", "integer NOT NULL"),
        ("value_as_number", "numeric NULL"),
        ("unit_concept_id", "integer NULL"),
    ),
    "observation": (
        ("observation_id", "bigint NOT NULL PRIMARY KEY"),
        ("person_id", "bigint NOT NULL"),
        ("observation_concept_id", "integer NOT NULL"),
        ("observation_date", "date NOT NULL"),
        ("observation_type_concept_id", "integer NOT NULL"),
        ("value_as_number", "numeric NULL"),
        ("unit_concept_id", "integer NULL"),
    ),
    "drug_exposure": (
        ("drug_exposure_id", "bigint NOT NULL PRIMARY KEY"),
        ("person_id", "bigint NOT NULL"),
        ("drug_concept_id", "integer NOT NULL"),
        ("drug_exposure_start_date", "date NOT NULL"),
        ("drug_exposure_end_date", "date NOT NULL"),
        ("drug_type_concept_id", "integer NOT NULL"),
    ),
    "consent": (
        ("person_id", "bigint NOT NULL PRIMARY KEY"),
        ("consented", "boolean NOT NULL"),
        ("valid_until", "date NULL"),
    ),
}

#: The tables holding one row per clinical fact of a person (row-level security applies).
PERSON_TABLES: tuple[str, ...] = tuple(
    t for t, cols in CDM_TABLES.items() if any(c == "person_id" for c, _ in cols)
)


def create_statements(schema: str) -> list[sql.Composed]:
    """``CREATE SCHEMA``, one ``CREATE TABLE`` per declared table in ``schema``, and an index
    on ``person_id`` of each person table that lacks one as its key (as the OHDSI DDL has):
    the cohort query looks each member's events up by person."""
    out = [sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema))]
    for table, columns in CDM_TABLES.items():
        body = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(kind)) for c, kind in columns
        )
        name = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        out.append(sql.SQL("CREATE TABLE {} ({})").format(name, body))
        if table in PERSON_TABLES and columns[0][0] != "person_id":
            out.append(sql.SQL("CREATE INDEX ON {} (person_id)").format(name))
    return out


def copy_statement(schema: str, table: str, columns: int) -> sql.Composed:
    """``COPY schema.table (<its first columns declared>) FROM STDIN``: the generators write
    rows in the declared column order, leaving trailing nullable columns out."""
    names = sql.SQL(", ").join(sql.Identifier(c) for c, _ in CDM_TABLES[table][:columns])
    return sql.SQL("COPY {}.{} ({}) FROM STDIN").format(
        sql.Identifier(schema), sql.Identifier(table), names
    )
