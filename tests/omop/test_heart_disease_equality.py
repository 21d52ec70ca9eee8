"""The four UCI hospitals read from OMOP CDM schemas in PostgreSQL give the rows, and the
trained model, that the bundled CSV files give (same schema, same seed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medsilo.config import RunConfig
from medsilo.data.own_site import load_own_site
from medsilo.data.registry import build_federation
from medsilo.data.spec import DataConfig
from medsilo.omop.postgres_cluster import Cluster
from tests.omop.heart_cdm import HOSPITALS, csv_section, omop_section


def _data(kind: str, section: dict[str, object]) -> dict[str, Any]:
    return {"dataset": kind, kind: section, "standardize": "federated"}


def test_same_rows_as_the_csv_files(postgres: Cluster, heart_db: str, tmp_path: Path) -> None:
    omop_data = _data("omop", omop_section(postgres, heart_db, list(HOSPITALS)))
    omop = build_federation(DataConfig.model_validate(omop_data), seed=0)
    csv_data = _data("tabular", csv_section(tmp_path))
    csv = build_federation(DataConfig.model_validate(csv_data), seed=0)
    assert [s.name for s in omop.sites] == list(HOSPITALS)
    assert sum(len(s.train) + len(s.test) for s in omop.sites) == 920  # every UCI row
    for a, b in zip(omop.sites, csv.sites, strict=True):
        for split in ("train", "test"):
            x, y = getattr(a, split), getattr(b, split)
            np.testing.assert_array_equal(x.x, y.x)
            np.testing.assert_array_equal(x.y, y.y)


def test_same_model_in_the_engine(postgres: Cluster, heart_db: str, tmp_path: Path) -> None:
    from medsilo.runtime.simulation import run_federation

    def run(data: dict[str, Any]) -> list[np.ndarray]:
        cfg = RunConfig.model_validate(
            {
                "name": "omop-vs-csv",
                "seed": 3,
                "data": data,
                "model": {"name": "logistic"},
                "training": {"rounds": 3, "local_steps": 5, "batch_size": 16, "lr": 0.1},
            }
        )
        return [np.asarray(w) for w in run_federation(cfg).weights]

    from_omop = run(_data("omop", omop_section(postgres, heart_db, list(HOSPITALS))))
    from_csv = run(_data("tabular", csv_section(tmp_path)))
    assert len(from_omop) == len(from_csv)
    for a, b in zip(from_omop, from_csv, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(np.abs(w).sum() > 0 for w in from_omop)  # it did train


def test_a_deployed_site_reads_only_its_own_database(postgres: Cluster, heart_db: str) -> None:
    """What ``load_own_site`` gives a site process is that site's part of the federation."""
    section = omop_section(postgres, heart_db, list(HOSPITALS))
    section["sites"][0]["dsn"] = "host=/nowhere port=1"  # type: ignore[index]  # another site
    cfg = DataConfig.model_validate({"dataset": "omop", "omop": section})
    own = load_own_site(cfg, "switzerland", None, seed=0).sites[0]
    whole = DataConfig.model_validate(
        {"dataset": "omop", "omop": omop_section(postgres, heart_db, list(HOSPITALS))}
    )
    expected = build_federation(whole, seed=0).sites[2]
    np.testing.assert_array_equal(own.train.x, expected.train.x)
    np.testing.assert_array_equal(own.test.y, expected.test.y)
