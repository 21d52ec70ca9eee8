"""``dataset: omop``: each site's OMOP CDM in PostgreSQL, one cohort specification.

The coordinator's config names the federation schema, the cohort specification and, per
site, the connection of its read-only role; each site compiles the specification to SQL and
extracts its rows (:mod:`medsilo.omop.site_cohort`). Every site is checked and extracted
before any training array is built; failing sites are reported together
(:func:`medsilo.data.checked_sites.check_every_site`). From the
extracted values on, sites are split, imputed and encoded as CSV sites are
(:func:`medsilo.data.tabular_sites.federation_from_checks`).
"""

from __future__ import annotations

from medsilo.data.base import FederatedData
from medsilo.data.checked_sites import check_every_site
from medsilo.data.schema import load_schema
from medsilo.data.sources import OmopSourceConfig
from medsilo.data.tabular_sites import federation_from_checks
from medsilo.omop.cohort_spec import check_against_schema, load_cohort_spec
from medsilo.omop.site_checks import OmopSourceError
from medsilo.omop.site_cohort import extract_site


def build_omop_federation(cfg: OmopSourceConfig) -> FederatedData:
    schema = load_schema(cfg.schema_path)
    spec = load_cohort_spec(cfg.spec)
    check_against_schema(spec, schema, str(cfg.spec))
    checks = check_every_site(
        "OMOP",
        cfg.sites,
        lambda site: extract_site(site.name, site.dsn, site.cdm_schema, spec, schema),
        OmopSourceError,
        OmopSourceError,
    )
    return federation_from_checks(
        f"omop:{schema.name}", schema, checks, cfg.test_fraction, cfg.split_seed
    )
