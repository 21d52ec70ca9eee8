"""``medsilo site ...``: what a hospital runs on its own data before joining a federation.

- ``check``: validate a CSV against the federation schema through the site's mapping, FHIR
  bundles through the federation's feature specification (``--fhir``; docs/fhir.md), or an
  OMOP database's cohort through the cohort specification (``--omop-spec``; docs/omop.md)
  (a table per column; exit code 1 when the data would be refused);
- ``report``: the epsilon-DP data report (JSON) the site may send to the coordinator;
- ``compare``: the coordinator's heterogeneity view from several sites' reports;
- ``dicom``: ingest a DICOM folder + labels CSV and print the ingestion report;
- ``demo-data``: write synthetic CSVs and DICOM folders to try all of the above.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from medsilo.data.base import DataFormatError
from medsilo.progress import progress_bars

if TYPE_CHECKING:
    from medsilo.data.schema import FederationSchema
    from medsilo.data.site_validation import SiteCheck

site_app = typer.Typer(
    help="Site-side data tools: validate against the federation schema, DP data reports, "
    "DICOM ingestion.",
    no_args_is_help=True,
)
out = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True)

SchemaOpt = Annotated[Path, typer.Option("--schema", help="federation schema YAML")]
MappingOpt = Annotated[
    Path | None, typer.Option("--mapping", help="this site's mapping YAML (CSV data)")
]
FhirOpt = Annotated[
    Path | None,
    typer.Option("--fhir", help="the federation's FHIR feature specification YAML (FHIR data)"),
]
DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="this site's CSV export, or with --fhir its FHIR bundles"),
]
SiteOpt = Annotated[
    str | None, typer.Option("--site", help="site name (default: mapping's; OMOP: the CDM schema)")
]
OmopSpecOpt = Annotated[
    Path | None,
    typer.Option("--omop-spec", help="OMOP site: cohort specification YAML (with --dsn)"),
]
DsnOpt = Annotated[
    str | None, typer.Option("--dsn", help="OMOP site: libpq connection string of its reader role")
]
CdmSchemaOpt = Annotated[str, typer.Option("--cdm-schema", help="OMOP site: the CDM's schema")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _check_omop(
    schema_path: Path, omop: tuple[Path | None, str | None, str], site: str | None
) -> tuple[FederationSchema, SiteCheck]:
    from medsilo.omop.site_checks import OmopSourceError
    from medsilo.omop.site_command import check_omop_site

    spec, dsn, cdm_schema = omop
    if spec is None or dsn is None:
        raise _fail("an OMOP site needs both --omop-spec and --dsn")
    try:
        return check_omop_site(schema_path, spec, dsn, cdm_schema, site or cdm_schema)
    except OmopSourceError as err:
        raise _fail(str(err), 1) from None
    except DataFormatError as err:
        raise _fail(str(err)) from None


def _check(
    schema_path: Path,
    mapping_path: Path | None,
    fhir: Path | None,
    data: Path | None,
    site: str | None,
    omop: tuple[Path | None, str | None, str],
) -> tuple[FederationSchema, SiteCheck]:
    from medsilo.data.schema import load_schema
    from medsilo.data.site_mapping import load_mapping
    from medsilo.data.site_validation import check_site

    is_omop = omop[0] is not None or omop[1] is not None
    if [mapping_path is not None, fhir is not None, is_omop].count(True) != 1:
        raise _fail(
            "give one source: --mapping and --data (a CSV), --fhir and --data (FHIR bundles), "
            "or --omop-spec and --dsn (OMOP)"
        )
    if is_omop:
        if data is not None:
            raise _fail("an OMOP site reads its database (--dsn), not --data")
        return _check_omop(schema_path, omop, site)
    if data is None:
        raise _fail("give the site's data with --data")
    if fhir is not None:
        return _fhir_check(schema_path, fhir, data, site)
    assert mapping_path is not None
    try:
        schema = load_schema(schema_path)
        mapping = load_mapping(mapping_path)
    except DataFormatError as err:
        raise _fail(str(err)) from None
    return schema, check_site(schema, mapping, data, site)


def _fhir_check(
    schema_path: Path, features: Path, bundles: Path, site: str | None
) -> tuple[FederationSchema, SiteCheck]:
    from medsilo.data.fhir_sites import check_fhir_site, load_fhir_spec
    from medsilo.fhir.bundle_reading import FhirSourceError

    try:
        schema, spec = load_fhir_spec(schema_path, features)
    except DataFormatError as err:
        raise _fail(str(err)) from None
    try:
        return schema, check_fhir_site(schema, spec, site or bundles.stem, bundles)
    except FhirSourceError as err:
        raise _fail(str(err), 1) from None


@site_app.command()
def check(
    schema: SchemaOpt,
    mapping: MappingOpt = None,
    fhir: FhirOpt = None,
    data: DataOpt = None,
    site: SiteOpt = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write JSON")] = None,
    omop_spec: OmopSpecOpt = None,
    dsn: DsnOpt = None,
    cdm_schema: CdmSchemaOpt = "cdm",
) -> None:
    """Validate a site's CSV, FHIR bundles or OMOP cohort against the federation schema;
    exit 1 if they would be refused."""
    _, result = _check(schema, mapping, fhir, data, site, (omop_spec, dsn, cdm_schema))
    table = Table(
        title=f"site {result.site}: {result.rows} labelled rows vs schema {result.schema!r}"
    )
    for col in [
        "column",
        "local",
        "type",
        "unit",
        "missing",
        "out of range",
        "unknown codes",
        "status",
    ]:
        table.add_column(col)
    for c in result.columns:
        colour = {"ok": "green", "error": "red"}.get(c.status, "yellow")
        table.add_row(
            c.column,
            c.local or "-",
            c.type,
            c.conversion or "-",
            f"{c.missing} ({c.missing_share:.0%})",
            str(c.out_of_range)
            + (f" e.g. {c.out_of_range_examples[:2]}" if c.out_of_range else ""),
            ", ".join(f"{k}: {v}" for k, v in c.unknown.items()) or "-",
            f"[{colour}]{c.status}[/]",
        )
    out.print(table)
    if result.ignored_columns:
        out.print(f"ignored local columns (not in the mapping): {result.ignored_columns}")
    for w in result.warnings:
        out.print(f"[yellow]warning:[/] {w}")
    if json_out is not None:
        json_out.write_text(json.dumps(result.to_json(), indent=2))
    if not result.ok:
        err_console.print(result.message())
        raise typer.Exit(1)
    out.print("[green]ok:[/] the data follows the federation schema")


@site_app.command()
def report(
    schema: SchemaOpt,
    mapping: MappingOpt = None,
    fhir: FhirOpt = None,
    data: DataOpt = None,
    site: SiteOpt = None,
    epsilon: Annotated[float, typer.Option(help="total privacy budget of the report")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="noise seed: for tests only")] = None,
    output: Annotated[Path | None, typer.Option("--out", help="JSON file (default stdout)")] = None,
    omop_spec: OmopSpecOpt = None,
    dsn: DsnOpt = None,
    cdm_schema: CdmSchemaOpt = "cdm",
) -> None:
    """Epsilon-DP data report (counts, label balance, feature summaries) as JSON."""
    from medsilo.data.data_report import private_report

    if not epsilon > 0:
        raise _fail(f"--epsilon must be > 0, got {epsilon}")
    fed_schema, result = _check(schema, mapping, fhir, data, site, (omop_spec, dsn, cdm_schema))
    if not result.ok:
        raise _fail(result.message(), 1)
    text = json.dumps(private_report(fed_schema, result, epsilon, seed), indent=2)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text)
        out.print(f"wrote {output} (epsilon={epsilon})")


def _shown(value: float | None, spec: str) -> str:
    """A statistic, or "not exported" where the site has no values for the column."""
    return "not exported" if value is None else format(value, spec)


@site_app.command()
def compare(
    reports: Annotated[list[Path], typer.Argument(help="site report JSON files")],
    output: Annotated[Path | None, typer.Option("--out", help="also write the JSON")] = None,
) -> None:
    """Coordinator view: label and feature heterogeneity across sites' DP reports."""
    from medsilo.data.heterogeneity import heterogeneity

    try:
        view = heterogeneity([json.loads(p.read_text()) for p in reports])
    except (OSError, ValueError, KeyError) as err:
        raise _fail(f"cannot combine the reports: {err}") from None
    sites = view["sites"]
    table = Table(
        title=f"heterogeneity across {len(sites)} sites (schema {view['schema']!r}, "
        "from DP reports)"
    )
    table.add_column("statistic")
    for s in sites:
        table.add_column(s)
    table.add_row("rows (noisy)", *[f"{view['counts'][s]:.0f}" for s in sites])
    table.add_row("label JS div.", *[f"{view['label']['js_divergence'][s]:.3f}" for s in sites])
    for name, f in view["features"].items():
        if f["type"] == "categorical":
            table.add_row(f"{name} JS div.", *[_shown(f["js_divergence"][s], ".3f") for s in sites])
        else:
            table.add_row(f"{name} SMD", *[_shown(f["smd"][s], "+.2f") for s in sites])
    out.print(table)
    if output is not None:
        output.write_text(json.dumps(view, indent=2))


@site_app.command()
def dicom(
    folder: Annotated[Path, typer.Option("--folder", help="the site's DICOM folder tree")],
    labels: Annotated[Path, typer.Option("--labels", help="labels CSV (path or uid, label)")],
    classes: Annotated[str, typer.Option(help="comma-separated class names")],
    name: Annotated[str, typer.Option("--site")] = "site",
    image_size: Annotated[int, typer.Option()] = 64,
    cache_dir: Annotated[Path, typer.Option()] = Path(".medsilo_cache/dicom"),
    path_column: Annotated[
        str, typer.Option(help="labels CSV column of each file's path (relative to --folder)")
    ] = "path",
    uid_column: Annotated[
        str, typer.Option(help="labels CSV column of SOPInstanceUIDs (used without the path one)")
    ] = "sop_instance_uid",
    label_column: Annotated[str, typer.Option(help="labels CSV column of labels")] = "label",
) -> None:
    """Ingest a DICOM folder (decode, window, resize, cache) and print its ingestion report."""
    from pydantic import ValidationError

    from medsilo.config_errors import describe_invalid
    from medsilo.data.dicom_site import ingest_site
    from medsilo.data.sources import DicomSourceConfig

    entry = {
        "name": name,
        "folder": folder,
        "labels": labels,
        "path_column": path_column,
        "uid_column": uid_column,
        "label_column": label_column,
    }
    try:
        cfg = DicomSourceConfig.model_validate(
            {
                "sites": [entry],
                "classes": [c.strip() for c in classes.split(",")],
                "image_size": image_size,
                "cache_dir": cache_dir,
            }
        )
    except ValidationError as err:
        raise _fail(describe_invalid(err, "invalid options:")) from None
    with progress_bars() as bars:

        def start(total: int) -> Callable[[], None]:
            task = bars.add_task(f"decoding {name}", total=total, status="")
            return lambda: bars.advance(task)

        try:
            data, rep = ingest_site(cfg.sites[0], cfg, on_start=start)
        except DataFormatError as err:
            raise _fail(str(err), 1) from None
    out.print(rep.to_markdown())
    out.print(
        f"tensors: {tuple(data.x.shape)}; report: {cache_dir / name / 'ingestion_report.md'}"
        + (" (from cache)" if rep.from_cache else "")
    )


@site_app.command("demo-data")
def demo_data(
    output: Annotated[Path, typer.Option("--out", help="folder to write into")],
    rows: Annotated[int, typer.Option(help="CSV rows per hospital")] = 200,
    images: Annotated[int, typer.Option(help="DICOM images per site")] = 24,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Write synthetic hospital CSVs (three local dialects) and DICOM site folders."""
    from medsilo.data.synthetic_sites import write_cardio_sites, write_dicom_sites

    csvs = write_cardio_sites(output / "tabular", rows, seed)
    folders = write_dicom_sites(output / "dicom", per_site=images, seed=seed)
    for site, path in csvs.items():
        out.print(f"{site}: {path}")
    for site, (folder, labels) in folders.items():
        out.print(f"{site}: {folder} (labels {labels})")
