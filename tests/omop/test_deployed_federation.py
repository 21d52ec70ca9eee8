"""The four heart-disease hospitals, each a ``medsilo site start`` process reading only its
own OMOP schema in PostgreSQL through its consent-restricted role, federated on loopback
(real SuperLink, SuperNodes, TLS, node keys) give the model the in-process engine trains
from the bundled CSV files (same seed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medsilo.config import parse_config
from medsilo.deploy.loopback import Loopback, heart_experiment
from medsilo.omop.postgres_cluster import Cluster
from medsilo.runtime.simulation import run_federation
from tests.omop.heart_cdm import HOSPITALS, csv_section, omop_section

from ..markers import FEDERATION_PROCESSES

pytestmark = [pytest.mark.slow, FEDERATION_PROCESSES]


@pytest.fixture
def loopback(tmp_path: Path, postgres: Cluster, heart_db: str) -> Iterator[Loopback]:
    """Kits for the four hospitals; the sites read data.omop (no ``--data``)."""
    data = {
        "dataset": "omop",
        "standardize": "federated",
        "omop": omop_section(postgres, heart_db, list(HOSPITALS)),
    }
    experiment = heart_experiment(rounds=3) | {"name": "omop-loopback", "data": data}
    lb = Loopback(tmp_path / "deployed", experiment, sites=list(HOSPITALS), site_data=None)
    yield lb
    lb.stop_all()


def test_deployed_omop_sites_give_the_csv_files_model(loopback: Loopback, tmp_path: Path) -> None:
    coordinator = loopback.start_coordinator()
    for site in loopback.sites:
        loopback.start_site(site)
    assert loopback.wait(coordinator, 400) == 0, loopback.all_logs()

    records = loopback.rounds()
    assert [r["round"] for r in records] == [1, 2, 3]
    assert all(r["sites"] == list(HOSPITALS) and not r.get("dropped") for r in records)
    with np.load(tmp_path / "deployed" / "run" / "final_weights.npz") as npz:
        deployed = [npz[f"arr_{i}"] for i in range(len(npz.files))]

    from_csv: dict[str, Any] = dict(loopback.experiment)
    from_csv["data"] = {
        "dataset": "tabular",
        "standardize": "federated",
        "tabular": csv_section(tmp_path),
    }
    engine = run_federation(parse_config(from_csv)).weights
    assert len(deployed) == len(engine)
    for a, b in zip(deployed, engine, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert any(np.abs(w).sum() > 0 for w in deployed)  # it did train
