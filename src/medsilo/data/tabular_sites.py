"""``dataset: tabular``: sites' CSV exports, mapped onto the federation schema, as a federation.

Every site is validated (``medsilo.data.site_validation``) before anything else happens; if
any site fails, the whole federation is refused with :class:`SiteDataError`, whose message
names each failing site, the column and what to fix. Training never starts on data that
does not follow the schema.

Encoding, identical at every site so all share one feature layout (schema order):
numeric columns in schema units, binary as 0/1, categorical as one-hot over the schema's
codes. Gaps left after validation are imputed with the site's median over its *training*
rows (the range midpoint if the site has no value), categorical gaps stay all-zero. Scaling
is left to ``data.standardize: federated`` (aggregate moments only).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from medsilo.data._util import frozen
from medsilo.data.base import ArrayData, DataFormatError, FederatedData, SiteData, concat_splits
from medsilo.data.schema import FederationSchema, load_schema
from medsilo.data.site_mapping import load_mapping
from medsilo.data.site_split import stratified_split
from medsilo.data.site_validation import SiteCheck, check_site
from medsilo.data.sources import TabularSourceConfig


class SiteDataError(DataFormatError):
    """One or more sites' data fail the federation schema; nothing was trained."""


def check_sites(cfg: TabularSourceConfig) -> tuple[FederationSchema, list[SiteCheck]]:
    schema = load_schema(cfg.schema_path)
    checks = [check_site(schema, load_mapping(s.mapping), s.csv, site=s.name) for s in cfg.sites]
    return schema, checks


def refusal_message(checks: list[SiteCheck]) -> str:
    failed = [c for c in checks if not c.ok]
    lines = [
        f"refusing to train: {len(failed)} of {len(checks)} site(s) fail validation "
        "(run `medsilo site check --schema S --mapping M --data CSV` at a site for the full "
        "table)"
    ]
    lines += [c.message() for c in failed]
    return "\n".join(lines)


def impute_values(
    schema: FederationSchema, values: dict[str, NDArray[np.float64]], fit_rows: NDArray[np.int64]
) -> dict[str, NDArray[np.float64]]:
    """Median imputation of numeric/binary gaps, the median taken over ``fit_rows`` only."""
    out = {}
    for col in schema.columns:
        v = values[col.name].copy()
        if col.type != "categorical":
            seen = v[fit_rows][~np.isnan(v[fit_rows])]
            lo, hi = col.bounds
            fill = float(np.median(seen)) if len(seen) else (lo + hi) / 2.0
            v[np.isnan(v)] = fill
        out[col.name] = v
    return out


def encode(schema: FederationSchema, values: dict[str, NDArray[np.float64]]) -> NDArray[np.float64]:
    """The feature matrix in schema order; categorical NaN (missing) is all-zero one-hot."""
    parts: list[NDArray[np.float64]] = []
    for col in schema.columns:
        v = values[col.name]
        if col.type == "categorical":
            assert col.codes is not None
            parts += [(v == i).astype(np.float64) for i in range(len(col.codes))]
        else:
            if np.isnan(v).any():
                raise ValueError(f"column {col.name!r} still has gaps; impute first")
            parts.append(v)
    return np.stack(parts, axis=1)


def site_arrays(
    schema: FederationSchema, check: SiteCheck, test_fraction: float, seed: int, index: int
) -> tuple[ArrayData, ArrayData]:
    assert check.values is not None and check.labels is not None
    y = check.labels
    train, test = stratified_split(y, test_fraction, seed, index)
    x = encode(schema, impute_values(schema, check.values, train))
    return frozen(x[train], y[train]), frozen(x[test], y[test])


def build_tabular_federation(cfg: TabularSourceConfig) -> FederatedData:
    schema, checks = check_sites(cfg)
    if not all(c.ok for c in checks):
        raise SiteDataError(refusal_message(checks))
    return federation_from_checks(
        f"tabular:{schema.name}", schema, checks, cfg.test_fraction, cfg.split_seed
    )


def federation_from_checks(
    name: str,
    schema: FederationSchema,
    checks: list[SiteCheck],
    test_fraction: float,
    split_seed: int,
) -> FederatedData:
    """The federation of validated sites (``check.site`` names each; CSV or OMOP alike)."""
    sites = []
    for i, check in enumerate(checks):
        train, test = site_arrays(schema, check, test_fraction, split_seed, i)
        if len(train) == 0:
            raise SiteDataError(f"site {check.site!r} ({check.csv}) has no training rows")
        sites.append(SiteData(check.site, train, test))
    num_classes = len(schema.label.classes)
    return FederatedData(
        name,
        sites,
        concat_splits([s.test for s in sites]),
        num_classes=num_classes,
        task="binary" if num_classes == 2 else "multiclass",
    )


def write_validation_reports(cfg: TabularSourceConfig, dest: Path) -> list[Path]:
    """Each site's validation report (missing shares, conversions, warnings) next to a run's
    results as ``dest/<site>_validation.json``; validation is cheap, so it is simply rerun.

    Cell values (out-of-range examples, unknown codes) are left out: a run directory is
    shared more widely than a site's own ``site check`` output.
    """
    dest.mkdir(parents=True, exist_ok=True)
    _, checks = check_sites(cfg)
    written = []
    for check in checks:
        report = check.to_json()
        for column in report["columns"]:
            for cells in ("out_of_range_examples", "unknown", "unknown_examples"):
                column.pop(cells)
        path = dest / f"{check.site}_validation.json"
        path.write_text(json.dumps(report, indent=2))
        written.append(path)
    return written
