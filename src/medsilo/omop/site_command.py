"""``medsilo site check | report`` on an OMOP database: the site's cohort against the schema.

A hospital runs it with the federation's schema and cohort specification and its own
read-only role's connection, before joining; the result is the same
:class:`~medsilo.data.site_validation.SiteCheck` a CSV site's check gives, so the command
prints the same per-column table and ``report`` noises the same statistics.
"""

from __future__ import annotations

from pathlib import Path

from medsilo.data.schema import FederationSchema, load_schema
from medsilo.data.site_validation import SiteCheck
from medsilo.omop.cohort_spec import check_against_schema, load_cohort_spec
from medsilo.omop.site_cohort import check_cohort


def check_omop_site(
    schema_path: Path, spec_path: Path, dsn: str, cdm_schema: str, site: str
) -> tuple[FederationSchema, SiteCheck]:
    """The schema and the site's check. A bad schema or specification raises
    :class:`~medsilo.data.base.DataFormatError`; a database that cannot give the cohort raises
    its subclass :class:`~medsilo.omop.site_checks.OmopSourceError` (nothing was extracted)."""
    schema = load_schema(schema_path)
    spec = load_cohort_spec(spec_path)
    check_against_schema(spec, schema, str(spec_path))
    return schema, check_cohort(site, dsn, cdm_schema, spec, schema)
