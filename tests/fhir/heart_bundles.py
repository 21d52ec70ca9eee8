"""The bundled heart-disease hospitals written as FHIR bundles, and the config sections that
read them (as FHIR, and as the CSV files the bundles were written from)."""

from __future__ import annotations

from pathlib import Path

from medsilo.data.heart_disease import COLUMNS, HOSPITALS
from medsilo.data.paths import resolve_root
from medsilo.fhir.heart_disease_bundles import Layout, write_heart_disease_bundles

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "examples" / "omop" / "heart_schema.yaml"
MAPPING = ROOT / "examples" / "omop" / "heart_mapping.yaml"
FEATURES = ROOT / "examples" / "fhir" / "heart_features.yaml"
HEART_FILES = resolve_root(None) / "heart_disease"


def fhir_section(dest: Path, layout: Layout = "ndjson") -> dict[str, object]:
    """The four hospitals written under ``dest`` and the ``data.fhir`` section reading them."""
    write_heart_disease_bundles(HEART_FILES, dest, HOSPITALS, layout)
    suffix = ".ndjson" if layout == "ndjson" else ""
    sites = [{"name": h, "bundles": str(dest / f"{h}{suffix}")} for h in HOSPITALS]
    return {"schema": str(SCHEMA), "features": str(FEATURES), "sites": sites}


def tabular_section(dest: Path) -> dict[str, object]:
    """The same hospitals' files given a header row, as ``data.tabular`` reads CSV exports."""
    dest.mkdir(parents=True, exist_ok=True)
    sites = []
    for hospital in HOSPITALS:
        body = (HEART_FILES / f"processed.{hospital}.data").read_text(encoding="utf-8")
        (dest / f"{hospital}.csv").write_text(",".join(COLUMNS) + "\n" + body, encoding="utf-8")
        sites.append(
            {"name": hospital, "csv": str(dest / f"{hospital}.csv"), "mapping": str(MAPPING)}
        )
    return {"schema": str(SCHEMA), "sites": sites}
