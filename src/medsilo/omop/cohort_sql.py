"""A cohort specification compiled to one parameterised SQL query over a site's CDM schema.

Identifiers (the schema) are quoted with :mod:`psycopg.sql`; every value (concept ids,
window days, unit factors) is a named parameter, so a specification cannot inject SQL. The
query returns one row per cohort member in ``person_id`` order: ``person_id``, one column
``f0, f1, ...`` per feature (in specification order) and ``label`` (0/1).

Units are converted in the query, row by row, before aggregating: ``units`` gives, per
feature index, ``unit_concept_id -> (scale, offset)`` into the schema unit (found by
:func:`medsilo.omop.site_checks.unit_factors`), so a site recording one quantity in two units
aggregates it correctly. A valued feature without an entry is taken as-is.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from medsilo.omop.cohort_spec import DOMAINS, CohortSpec, Criterion, Feature, Window

UnitFactors = dict[int, dict[int, tuple[float, float]]]

_SQL_AGGREGATES = {"min": "min", "max": "max", "mean": "avg"}


class _Query:
    """Collects named parameters while the SQL is composed."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.params: dict[str, Any] = {}

    def param(self, name: str, value: Any, cast: str) -> sql.Composable:
        self.params[name] = value
        return sql.SQL("{}::{}").format(sql.Placeholder(name), sql.SQL(cast))

    def table(self, name: str) -> sql.Composable:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(name))

    def events(self, domain: str, ids: list[int], window: Window, key: str) -> sql.Composable:
        """``FROM <table> e WHERE`` the cohort member's events of ``ids`` in ``window``."""
        table, concept, date = DOMAINS[domain]
        return sql.SQL(
            "FROM {table} e WHERE e.person_id = c.person_id AND e.{concept} = ANY({ids}) "
            "AND e.{date} BETWEEN c.index_date + {lo} AND c.index_date + {hi}"
        ).format(
            table=self.table(table),
            concept=sql.Identifier(concept),
            date=sql.Identifier(date),
            ids=self.param(f"{key}_concepts", ids, "integer[]"),
            lo=self.param(f"{key}_start", window.start, "integer"),
            hi=self.param(f"{key}_end", window.end, "integer"),
        )

    def exists(self, crit: Criterion, key: str) -> sql.Composable:
        return sql.SQL("EXISTS (SELECT 1 {})").format(
            self.events(crit.domain, crit.concept_ids, crit.window, key)
        )


def _value(q: _Query, key: str, factors: dict[int, tuple[float, float]]) -> sql.Composable:
    """``value_as_number`` in the schema unit (a CASE over the unit concepts seen)."""
    raw = sql.SQL("e.value_as_number::double precision")
    if not factors:
        return raw
    cases = [
        sql.SQL("WHEN {u} THEN {v} * {s} + {o}").format(
            u=q.param(f"{key}_unit{i}", unit, "integer"),
            v=raw,
            s=q.param(f"{key}_scale{i}", scale, "double precision"),
            o=q.param(f"{key}_offset{i}", offset, "double precision"),
        )
        for i, (unit, (scale, offset)) in enumerate(sorted(factors.items()))
    ]
    return sql.SQL("CASE e.unit_concept_id {} END").format(sql.SQL(" ").join(cases))


def _feature(q: _Query, f: Feature, i: int, units: UnitFactors) -> sql.Composable:
    key = f"f{i}"
    person = q.table("person")
    if f.source == "age":  # whole years between birth (year, month, day of birth) and index
        return sql.SQL(
            "(SELECT extract(year FROM age(c.index_date, make_date(p.year_of_birth, "
            "coalesce(p.month_of_birth, 1), coalesce(p.day_of_birth, 1))))::double precision "
            "FROM {} p WHERE p.person_id = c.person_id)"
        ).format(person)
    if f.source == "gender":
        return sql.SQL(
            "(SELECT p.gender_concept_id::double precision FROM {} p "
            "WHERE p.person_id = c.person_id)"
        ).format(person)
    events = q.events(f.source, f.concept_ids, f.window, key)
    if f.aggregate == "exists":
        return sql.SQL("(CASE WHEN EXISTS (SELECT 1 {}) THEN 1.0 ELSE 0.0 END)").format(events)
    if f.aggregate == "count":
        return sql.SQL("(SELECT count(*)::double precision {})").format(events)
    value = _value(q, key, units.get(i, {}))
    if f.aggregate in _SQL_AGGREGATES:
        agg = sql.SQL(_SQL_AGGREGATES[f.aggregate])
        return sql.SQL("(SELECT {}({}) {})").format(agg, value, events)
    _, _, date = DOMAINS[f.source]
    order = sql.SQL("DESC" if f.aggregate == "last" else "ASC")
    return sql.SQL("(SELECT {v} {ev} ORDER BY e.{date} {order}, e.{id} {order} LIMIT 1)").format(
        v=value,
        ev=events,
        date=sql.Identifier(date),
        id=sql.Identifier(f"{DOMAINS[f.source][0]}_id"),
        order=order,
    )


def compile_cohort(
    spec: CohortSpec, schema: str, units: UnitFactors | None = None
) -> tuple[sql.Composed, dict[str, Any]]:
    """The query and its parameters for the CDM in ``schema`` (see the module docstring)."""
    q = _Query(schema)
    visits = q.param("index_concepts", spec.index.visit_concept_ids, "integer[]")
    conditions: list[sql.Composable] = [sql.SQL("TRUE")]
    conditions += [q.exists(c, f"in{i}") for i, c in enumerate(spec.inclusion)]
    conditions += [
        sql.SQL("NOT {}").format(q.exists(c, f"ex{i}")) for i, c in enumerate(spec.exclusion)
    ]
    columns = [
        sql.SQL("{} AS {}").format(_feature(q, f, i, units or {}), sql.Identifier(f"f{i}"))
        for i, f in enumerate(spec.features)
    ]
    label = sql.SQL("(CASE WHEN {} THEN 1 ELSE 0 END) AS label").format(
        q.exists(spec.label, "label")
    )
    query = sql.SQL(
        "WITH index_event AS (\n"
        "  SELECT v.person_id, min(v.visit_start_date) AS index_date\n"
        "  FROM {visits} v WHERE v.visit_concept_id = ANY({ids})\n"
        "  GROUP BY v.person_id\n"
        "), cohort AS (\n"
        "  SELECT * FROM index_event c\n"
        "  WHERE {conditions}\n"
        ")\n"
        "SELECT c.person_id,\n  {columns},\n  {label}\n"
        "FROM cohort c ORDER BY c.person_id"
    ).format(
        visits=q.table("visit_occurrence"),
        ids=visits,
        conditions=sql.SQL("\n    AND ").join(conditions),
        columns=sql.SQL(",\n  ").join(columns),
        label=label,
    )
    return query, q.params
