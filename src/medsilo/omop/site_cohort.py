"""A site's training rows from its OMOP CDM: the checks, the compiled query, schema values.

The result is the same :class:`~medsilo.data.site_validation.SiteCheck` a CSV site's
validation gives (values in schema units, categorical values as code indices, 0/1 labels,
one :class:`~medsilo.data.site_validation.ColumnCheck` per schema column), so OMOP sites are
split, imputed and encoded by exactly the code CSV sites are
(:mod:`medsilo.data.tabular_sites`) and ``medsilo site check | report`` print and noise them
as they do a CSV's. Everything about the database (connection, tables, role, concepts,
units) is checked before the cohort query runs, and the connection is read-only from then
on; what the rows themselves get wrong (ranges, codes, missing shares) is collected per
column, as a CSV's validation collects it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from medsilo.data.schema import FederationSchema, SchemaColumn
from medsilo.data.site_validation import MAX_EXAMPLES, ColumnCheck, Issue, SiteCheck
from medsilo.omop.cohort_spec import CohortSpec, Feature
from medsilo.omop.cohort_sql import compile_cohort
from medsilo.omop.site_checks import (
    OmopSourceError,
    check_concepts,
    check_tables,
    connect,
    redacted,
    refuse_writable,
    unit_factors,
)

#: The cohort query runs without PostgreSQL's JIT compilation. Its cost estimate grows with
#: the cohort and passes ``jit_above_cost`` from a few thousand persons on; the row-level
#: security policies then add a consent subplan per event table, and compiling them all took
#: seconds the query itself does not (2,000 synthetic persons: 8 s with JIT, 0.7 s without).
NO_JIT = "SET jit = off"


def _code_text(value: float) -> str:
    return f"{value:g}"


def _source(f: Feature) -> str:
    return " ".join([f.source, *map(str, f.concept_ids)])


def _conversion(factors: dict[int, tuple[float, float]], unit: str | None) -> str:
    """The unit concepts a feature's events carry and their factor into the schema unit."""
    return ", ".join(
        f"{u} -> {unit} x{scale:g}" + (f" {offset:+g}" if offset else "")
        for u, (scale, offset) in sorted(factors.items())
    )


def _schema_values(
    f: Feature, column: SchemaColumn, raw: list[float | None], federation: FederationSchema
) -> tuple[NDArray[np.float64], ColumnCheck, list[Issue]]:
    """The column in schema form (NaN = missing), its statistics and its problems."""
    v = np.array([np.nan if x is None else float(x) for x in raw], dtype=np.float64)
    check = ColumnCheck(column.name, column.type, local=_source(f), rows=len(v))
    issues: list[Issue] = []

    def problem(text: str, fix: str) -> None:
        issues.append(Issue(column.name, check.local, text, fix))

    seen = ~np.isnan(v)
    if f.codes is not None:  # gender: concept id -> schema code text
        unknown = sorted({int(x) for x in v[seen] if int(x) not in f.codes})
        if unknown:
            check.unknown = {str(u): int((v == u).sum()) for u in unknown}
            problem(
                f"gender_concept_id(s) {unknown} have no code in `codes`",
                "add them to the feature's codes in the cohort specification",
            )
            v[seen] = np.nan
            seen = ~np.isnan(v)
        texts = [f.codes[int(x)] if ok else None for x, ok in zip(v, seen, strict=True)]
    else:
        texts = [_code_text(x) if ok else None for x, ok in zip(v, seen, strict=True)]
    if column.type in ("categorical", "binary"):
        codes = (column.codes or []) if column.type == "categorical" else ["0", "1"]
        bad = sorted({t for t in texts if t is not None and t not in codes})
        if bad:
            check.unknown |= {b: texts.count(b) for b in bad}
            problem(
                f"value(s) {bad} are not codes of {column.name} {codes}",
                f"correct the {f.source} rows or the specification's concepts",
            )
        as_code = {c: float(i) for i, c in enumerate(codes)}
        if column.type == "binary":
            as_code = {"0": 0.0, "1": 1.0}
        v = np.array([as_code.get(t, np.nan) if t is not None else np.nan for t in texts])
    else:
        lo, hi = column.bounds
        outside = seen & ((v < lo) | (v > hi))
        check.out_of_range = int(outside.sum())
        check.out_of_range_examples = [f"{x:g}" for x in sorted(set(v[outside]))[:MAX_EXAMPLES]]
        if check.out_of_range / max(1, len(v)) > federation.max_out_of_range:
            examples = sorted({float(x) for x in v[outside]})[:MAX_EXAMPLES]
            problem(
                f"{check.out_of_range} value(s) outside {column.name}'s range "
                f"[{lo:g}, {hi:g}] {column.unit}, e.g. {examples}",
                f"correct the {f.source} rows or their unit_concept_id",
            )
        v[outside] = np.nan
    check.missing = int(np.isnan(v).sum())
    if column.required and check.missing_share > federation.max_missing:
        problem(
            f"{check.missing_share:.0%} missing, above the schema's max_missing "
            f"{federation.max_missing:.0%}",
            "record the feature for more of the cohort or widen its window",
        )
    check.status = "error" if issues else "ok"
    return v, check, issues


def check_cohort(
    site: str, dsn: str, cdm_schema: str, spec: CohortSpec, federation: FederationSchema
) -> SiteCheck:
    """Check the site's CDM and role, run the cohort query, map the rows onto the schema.

    A database that cannot give the rows raises :class:`OmopSourceError`; rows that do not fit
    the schema come back as the result's issues (``values`` None), one per column.
    """
    with connect(dsn, site) as conn:
        check_tables(conn, cdm_schema, site)
        refuse_writable(conn, cdm_schema, site)
        conn.rollback()
        conn.read_only = True
        check_concepts(conn, cdm_schema, spec, site)
        units = unit_factors(conn, cdm_schema, spec, federation, site)
        query, params = compile_cohort(spec, cdm_schema, units)
        conn.execute(NO_JIT)
        rows = conn.execute(query, params).fetchall()
    if not rows:
        raise OmopSourceError(f"site {site!r}: the cohort {spec.name!r} is empty")
    result = SiteCheck(
        site=site,
        csv=f"omop {redacted(dsn)} schema {cdm_schema}",
        schema=federation.name,
        rows=len(rows),
    )
    values = {}
    for i, f in enumerate(spec.features):
        column = federation.column(f.to)
        values[f.to], check, issues = _schema_values(
            f, column, [r[1 + i] for r in rows], federation
        )
        check.conversion = _conversion(units.get(i, {}), column.unit)
        result.columns.append(check)
        result.issues += issues
    result.columns.sort(key=lambda c: federation.column_names.index(c.column))
    if result.ok:
        positive = federation.label.classes.index("1")
        result.values = {c.name: values[c.name] for c in federation.columns}
        result.labels = np.array(
            [positive if r[-1] else 1 - positive for r in rows], dtype=np.int64
        )
    return result


def extract_site(
    site: str, dsn: str, cdm_schema: str, spec: CohortSpec, federation: FederationSchema
) -> SiteCheck:
    """:func:`check_cohort`, refusing a cohort that does not fit the schema."""
    result = check_cohort(site, dsn, cdm_schema, spec, federation)
    if not result.ok:
        raise OmopSourceError(
            f"site {site!r}: the cohort does not fit schema {federation.name!r}: "
            + "; ".join(f"feature {i.column!r} ({i.local}): {i.problem}" for i in result.issues)
        )
    return result
