"""Helpers for tests of site-held tabular data: the example schema and mappings, mutable."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tabular"
SITES = ("hospital_a", "hospital_b", "hospital_c")


def schema_dict() -> dict[str, Any]:
    return dict(yaml.safe_load((EXAMPLES / "schema.yaml").read_text()))


def mapping_dict(site: str) -> dict[str, Any]:
    return dict(yaml.safe_load((EXAMPLES / f"mapping_{site[-1]}.yaml").read_text()))


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(copy.deepcopy(data), sort_keys=False))
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    return path
