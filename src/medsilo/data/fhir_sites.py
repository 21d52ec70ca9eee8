"""``dataset: fhir``: each site's FHIR R4 bundles, one feature specification (docs/fhir.md).

The coordinator's config names the federation schema, the feature specification (codes ->
schema columns and the label) and, per site, its bundles. Each site's bundles are read and
validated (:mod:`medsilo.fhir.bundle_reading`), its patients turned into rows
(:mod:`medsilo.fhir.patient_features`) and those rows validated as a CSV site's are
(:func:`medsilo.data.site_validation.check_table`). Every site is checked before any training
array is built; failing sites are reported together
(:func:`medsilo.data.checked_sites.check_every_site`). From there on, sites are split, imputed
and encoded as CSV sites are (:func:`medsilo.data.tabular_sites.federation_from_checks`).
"""

from __future__ import annotations

from pathlib import Path

from medsilo.data.base import FederatedData
from medsilo.data.checked_sites import check_every_site
from medsilo.data.schema import FederationSchema, load_schema
from medsilo.data.site_validation import SiteCheck, check_table
from medsilo.data.sources import FhirSiteEntry, FhirSourceConfig
from medsilo.data.tabular_sites import SiteDataError, federation_from_checks
from medsilo.fhir.bundle_reading import FhirSourceError, read_site_bundles
from medsilo.fhir.feature_spec import FhirFeatureSpec, check_against_schema, load_feature_spec
from medsilo.fhir.patient_features import patient_table


def load_fhir_spec(schema_path: Path, features: Path) -> tuple[FederationSchema, FhirFeatureSpec]:
    """The schema and the feature specification, checked against each other."""
    schema = load_schema(schema_path)
    spec = load_feature_spec(features)
    check_against_schema(spec, schema, str(features))
    return schema, spec


def check_fhir_site(
    schema: FederationSchema, spec: FhirFeatureSpec, site: str, bundles: Path
) -> SiteCheck:
    """The site's validation report (rows in schema form when it passes); raises
    :class:`FhirSourceError` when a bundle or resource cannot be read or mapped."""
    records = read_site_bundles(bundles)
    table, mapping = patient_table(records, spec, schema, f"site {site!r} ({bundles})")
    check = SiteCheck(site=site, csv=f"fhir {bundles}", schema=schema.name)
    return check_table(schema, mapping, table, check)


def check_named_fhir_site(
    schema: FederationSchema, spec: FhirFeatureSpec, site: FhirSiteEntry
) -> SiteCheck:
    """:func:`check_fhir_site` for a configured site; a :class:`FhirSourceError` names it."""
    try:
        return check_fhir_site(schema, spec, site.name, site.bundles)
    except FhirSourceError as err:
        raise FhirSourceError(f"site {site.name!r}: {err}") from err


def build_fhir_federation(cfg: FhirSourceConfig) -> FederatedData:
    schema, spec = load_fhir_spec(cfg.schema_path, cfg.features)
    checks = check_every_site(
        "FHIR",
        cfg.sites,
        lambda site: check_named_fhir_site(schema, spec, site),
        FhirSourceError,
        SiteDataError,
    )
    return federation_from_checks(
        f"fhir:{schema.name}", schema, checks, cfg.test_fraction, cfg.split_seed
    )
