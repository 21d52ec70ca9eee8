"""Config sections for data that stays at the hospitals: DICOM folders, EHR CSV exports, OMOP
databases, FHIR bundles.

Bundled datasets are named; site-held data is described: which folder or CSV each site
reads, how images are preprocessed, which federation schema tabular columns must follow.
These models only hold paths and settings (no I/O), so a config can be validated on a
machine that does not hold the data. A config file's relative paths are relative to the file's
own folder: :func:`medsilo.config.load_config` anchors them there (``anchored_at``), so a config
works from any working directory. A config built in code keeps them relative to the working
directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medsilo.data.paths import anchored

SITE_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowConfig(_Strict):
    """A fixed display window: intensities in ``[center - width/2, center + width/2]``."""

    center: float
    width: float = Field(gt=0)


class DicomSiteEntry(_Strict):
    name: str = Field(pattern=SITE_NAME_PATTERN)
    folder: Path = Field(description="folder tree holding the site's DICOM files")
    labels: Path = Field(
        description="CSV with a header naming a label column and a path column (path "
        "relative to folder) or a SOPInstanceUID column; a label is a class name from "
        "`classes` or its index"
    )
    path_column: str = Field(
        "path", min_length=1, description="labels CSV column of each file's relative path"
    )
    uid_column: str = Field(
        "sop_instance_uid",
        min_length=1,
        description="labels CSV column of each file's SOPInstanceUID (used without path_column)",
    )
    label_column: str = Field("label", min_length=1, description="labels CSV column of labels")

    def anchored_at(self, folder: Path) -> DicomSiteEntry:
        """The entry with relative paths read from ``folder``."""
        update = {"folder": anchored(self.folder, folder), "labels": anchored(self.labels, folder)}
        return self.model_copy(update=update)


class DicomSourceConfig(_Strict):
    """``data.dicom``: per-site DICOM folders, preprocessed to one shared model input."""

    sites: list[DicomSiteEntry] = Field(min_length=1)
    classes: list[str] = Field(min_length=2, description="class names; index = label")
    image_size: int = Field(64, ge=4, description="square side the images are resized to")
    window: Literal["file", "minmax"] | WindowConfig = Field(
        "file",
        description="file: the DICOM's WindowCenter/WindowWidth (min-max when absent); "
        "minmax: each image's own range; {center, width}: one fixed window for every file",
    )
    modality: str | None = Field(
        None, description="expected Modality (e.g. CR); None: each site's most common one"
    )
    normalize_mean: float = 0.5
    normalize_std: float = Field(0.5, gt=0)
    test_fraction: float = Field(0.25, gt=0, lt=1)
    split_seed: int = Field(0, description="seed of each site's stratified train/test split")
    cache_dir: Path = Field(
        Path(".medsilo_cache/dicom"),
        description="decoded tensors and ingestion reports, one set per site",
    )

    def anchored_at(self, folder: Path) -> DicomSourceConfig:
        """The section with relative paths (the cache's too) read from ``folder``."""
        sites = [s.anchored_at(folder) for s in self.sites]
        return self.model_copy(
            update={"sites": sites, "cache_dir": anchored(self.cache_dir, folder)}
        )

    @model_validator(mode="after")
    def _unique(self) -> DicomSourceConfig:
        check_unique_names("data.dicom.sites", [s.name for s in self.sites])
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"data.dicom.classes has duplicates: {self.classes}")
        return self


class TabularSiteEntry(_Strict):
    name: str = Field(pattern=SITE_NAME_PATTERN)
    csv: Path = Field(description="the site's CSV export (header row, comma-separated)")
    mapping: Path = Field(description="the site's mapping YAML (local columns -> schema)")

    def anchored_at(self, folder: Path) -> TabularSiteEntry:
        """The entry with relative paths read from ``folder``."""
        update = {"csv": anchored(self.csv, folder), "mapping": anchored(self.mapping, folder)}
        return self.model_copy(update=update)


class _SchemaSourceConfig(_Strict):
    """What every source mapped onto a federation schema has: the schema, each site's split."""

    schema_path: Path = Field(alias="schema", description="the federation schema YAML")
    test_fraction: float = Field(0.25, gt=0, lt=1)
    split_seed: int = Field(0, description="seed of each site's stratified train/test split")

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True
    )


class TabularSourceConfig(_SchemaSourceConfig):
    """``data.tabular``: per-site CSVs mapped onto one federation schema."""

    sites: list[TabularSiteEntry] = Field(min_length=1)

    def anchored_at(self, folder: Path) -> TabularSourceConfig:
        """The section with relative paths read from ``folder``."""
        sites = [s.anchored_at(folder) for s in self.sites]
        schema = anchored(self.schema_path, folder)
        return self.model_copy(update={"sites": sites, "schema_path": schema})

    @model_validator(mode="after")
    def _unique(self) -> TabularSourceConfig:
        check_unique_names("data.tabular.sites", [s.name for s in self.sites])
        return self


class OmopSiteEntry(_Strict):
    name: str = Field(pattern=SITE_NAME_PATTERN)
    dsn: str = Field(
        description="libpq connection string of the site's read-only role, e.g. "
        "'host=db port=5432 dbname=cdm user=medsilo_reader' (a password comes from "
        "PGPASSWORD or ~/.pgpass, not the config)"
    )
    cdm_schema: str = Field("cdm", min_length=1, description="the schema holding the CDM")


class OmopSourceConfig(_SchemaSourceConfig):
    """``data.omop``: per-site OMOP CDM databases, one cohort specification (docs/omop.md)."""

    spec: Path = Field(description="the cohort and feature specification YAML")
    sites: list[OmopSiteEntry] = Field(min_length=1)

    def anchored_at(self, folder: Path) -> OmopSourceConfig:
        """The section with the schema and specification paths read from ``folder``."""
        update = {
            "schema_path": anchored(self.schema_path, folder),
            "spec": anchored(self.spec, folder),
        }
        return self.model_copy(update=update)

    @model_validator(mode="after")
    def _unique(self) -> OmopSourceConfig:
        check_unique_names("data.omop.sites", [s.name for s in self.sites])
        return self


class FhirSiteEntry(_Strict):
    name: str = Field(pattern=SITE_NAME_PATTERN)
    bundles: Path = Field(
        description="the site's FHIR R4 bundles: a folder of *.json (one Bundle each) and "
        "*.ndjson (one Bundle a line) files, or one such file"
    )

    def anchored_at(self, folder: Path) -> FhirSiteEntry:
        """The entry with a relative path read from ``folder``."""
        return self.model_copy(update={"bundles": anchored(self.bundles, folder)})


class FhirSourceConfig(_SchemaSourceConfig):
    """``data.fhir``: per-site FHIR bundles, one feature specification (docs/fhir.md)."""

    features: Path = Field(description="the FHIR feature specification YAML (codes -> schema)")
    sites: list[FhirSiteEntry] = Field(min_length=1)

    def anchored_at(self, folder: Path) -> FhirSourceConfig:
        """The section with the schema, specification and bundle paths read from ``folder``."""
        update = {
            "schema_path": anchored(self.schema_path, folder),
            "features": anchored(self.features, folder),
            "sites": [s.anchored_at(folder) for s in self.sites],
        }
        return self.model_copy(update=update)

    @model_validator(mode="after")
    def _unique(self) -> FhirSourceConfig:
        check_unique_names("data.fhir.sites", [s.name for s in self.sites])
        return self


def check_unique_names(where: str, names: list[str]) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{where}: site names must be unique; repeated: {dupes}")
