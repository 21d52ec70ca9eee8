"""The four UCI hospitals read from FHIR bundles give the rows, and the trained model, that
the bundled CSV files give (same schema, same seed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medsilo.config import RunConfig
from medsilo.data.heart_disease import HOSPITALS
from medsilo.data.own_site import load_own_site
from medsilo.data.registry import build_federation
from medsilo.data.spec import DataConfig
from medsilo.fhir.heart_disease_bundles import Layout
from tests.fhir.heart_bundles import fhir_section, tabular_section


def _data(kind: str, section: dict[str, object]) -> dict[str, Any]:
    return {"dataset": kind, kind: section, "standardize": "federated"}


@pytest.mark.parametrize("layout", ["ndjson", "files"])
def test_same_rows_as_the_csv_files(layout: Layout, tmp_path: Path) -> None:
    fhir_data = _data("fhir", fhir_section(tmp_path / "bundles", layout))
    fhir = build_federation(DataConfig.model_validate(fhir_data), seed=0)
    csv_data = _data("tabular", tabular_section(tmp_path / "csv"))
    csv = build_federation(DataConfig.model_validate(csv_data), seed=0)
    assert [s.name for s in fhir.sites] == list(HOSPITALS)
    assert sum(len(s.train) + len(s.test) for s in fhir.sites) == 920  # every UCI row
    for a, b in zip(fhir.sites, csv.sites, strict=True):
        for split in ("train", "test"):
            x, y = getattr(a, split), getattr(b, split)
            np.testing.assert_array_equal(x.x, y.x)
            np.testing.assert_array_equal(x.y, y.y)


def test_same_model_in_the_engine(tmp_path: Path) -> None:
    from medsilo.runtime.simulation import run_federation

    def run(data: dict[str, Any]) -> list[np.ndarray]:
        cfg = RunConfig.model_validate(
            {
                "name": "fhir-vs-csv",
                "seed": 3,
                "data": data,
                "model": {"name": "logistic"},
                "training": {"rounds": 3, "local_steps": 5, "batch_size": 16, "lr": 0.1},
            }
        )
        return [np.asarray(w) for w in run_federation(cfg).weights]

    from_fhir = run(_data("fhir", fhir_section(tmp_path / "bundles")))
    from_csv = run(_data("tabular", tabular_section(tmp_path / "csv")))
    assert len(from_fhir) == len(from_csv)
    for a, b in zip(from_fhir, from_csv, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(np.abs(w).sum() > 0 for w in from_fhir)  # it did train


def test_a_deployed_site_reads_only_its_own_bundles(tmp_path: Path) -> None:
    """What ``load_own_site`` gives a site process is that site's part of the federation,
    whatever the other sites' entries hold (``--data`` overrides the entry's bundles)."""
    section = fhir_section(tmp_path / "bundles")
    whole = build_federation(DataConfig.model_validate({"dataset": "fhir", "fhir": section}), 0)
    sites: Any = section["sites"]
    moved = tmp_path / "elsewhere.ndjson"
    Path(sites[2]["bundles"]).rename(moved)
    for entry in sites:
        entry["bundles"] = str(tmp_path / "missing")
    cfg = DataConfig.model_validate({"dataset": "fhir", "fhir": section})
    own = load_own_site(cfg, "switzerland", moved, seed=0).sites[0]
    expected = whole.sites[2]
    np.testing.assert_array_equal(own.train.x, expected.train.x)
    np.testing.assert_array_equal(own.test.y, expected.test.y)
