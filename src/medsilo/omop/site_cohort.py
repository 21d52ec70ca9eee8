"""A site's training rows from its OMOP CDM: the checks, the compiled query, schema values.

The result is the same :class:`~medsilo.data.site_validation.SiteCheck` a CSV site's
validation gives (values in schema units, categorical values as code indices, 0/1 labels),
so OMOP sites are split, imputed and encoded by exactly the code CSV sites are
(:mod:`medsilo.data.tabular_sites`). Everything is checked before the cohort query runs, and
the connection is read-only from then on.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from medsilo.data.schema import FederationSchema, SchemaColumn
from medsilo.data.site_validation import SiteCheck
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


def _code_text(value: float) -> str:
    return f"{value:g}"


def _schema_values(
    f: Feature, column: SchemaColumn, raw: list[float | None], federation: FederationSchema
) -> tuple[NDArray[np.float64], list[str]]:
    """The column in schema form (NaN = missing) and its problems, each naming the feature."""
    v = np.array([np.nan if x is None else float(x) for x in raw], dtype=np.float64)
    where = f"feature {f.to!r} ({' '.join([f.source, *map(str, f.concept_ids)])})"
    problems = []
    seen = ~np.isnan(v)
    if f.codes is not None:  # gender: concept id -> schema code text
        unknown = sorted({int(x) for x in v[seen] if int(x) not in f.codes})
        if unknown:
            return v, [f"{where}: gender_concept_id(s) {unknown} have no code in `codes`"]
        texts = [f.codes[int(x)] if ok else None for x, ok in zip(v, seen, strict=True)]
    else:
        texts = [_code_text(x) if ok else None for x, ok in zip(v, seen, strict=True)]
    if column.type == "categorical":
        codes = column.codes or []
        bad = sorted({t for t in texts if t is not None and t not in codes})
        if bad:
            problems.append(f"{where}: value(s) {bad} are not codes of {column.name} {codes}")
        else:
            v = np.array([np.nan if t is None else codes.index(t) for t in texts], np.float64)
    elif column.type == "binary":
        bad = sorted({t for t in texts if t is not None and t not in ("0", "1")})
        if bad:
            problems.append(f"{where}: value(s) {bad} are not 0/1")
        else:
            v = np.array([np.nan if t is None else float(t) for t in texts], np.float64)
    else:
        lo, hi = column.bounds
        outside = seen & ((v < lo) | (v > hi))
        share = float(outside.sum()) / max(1, len(v))
        if share > federation.max_out_of_range:
            examples = sorted({float(x) for x in v[outside]})[:5]
            problems.append(
                f"{where}: {int(outside.sum())} value(s) outside {column.name}'s range "
                f"[{lo:g}, {hi:g}] {column.unit}, e.g. {examples}"
            )
        v[outside] = np.nan
    missing = float(np.isnan(v).mean()) if len(v) else 0.0
    if column.required and missing > federation.max_missing:
        problems.append(
            f"{where}: {missing:.0%} missing, above the schema's max_missing "
            f"{federation.max_missing:.0%}"
        )
    return v, problems


def extract_site(
    site: str, dsn: str, cdm_schema: str, spec: CohortSpec, federation: FederationSchema
) -> SiteCheck:
    """Check the site's CDM and role, run the cohort query, map the rows onto the schema."""
    with connect(dsn, site) as conn:
        check_tables(conn, cdm_schema, site)
        refuse_writable(conn, cdm_schema, site)
        conn.rollback()
        conn.read_only = True
        check_concepts(conn, cdm_schema, spec, site)
        units = unit_factors(conn, cdm_schema, spec, federation, site)
        query, params = compile_cohort(spec, cdm_schema, units)
        rows = conn.execute(query, params).fetchall()
    if not rows:
        raise OmopSourceError(f"site {site!r}: the cohort {spec.name!r} is empty")
    values, problems = {}, []
    for i, f in enumerate(spec.features):
        column = federation.column(f.to)
        values[f.to], found = _schema_values(f, column, [r[1 + i] for r in rows], federation)
        problems += found
    if problems:
        raise OmopSourceError(
            f"site {site!r}: the cohort does not fit schema {federation.name!r}: "
            + "; ".join(problems)
        )
    positive = federation.label.classes.index("1")
    labels = np.array([positive if r[-1] else 1 - positive for r in rows], dtype=np.int64)
    return SiteCheck(
        site=site,
        csv=f"omop {redacted(dsn)} schema {cdm_schema}",
        schema=federation.name,
        rows=len(rows),
        values={c.name: values[c.name] for c in federation.columns},
        labels=labels,
    )
