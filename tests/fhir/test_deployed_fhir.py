"""A deployed federation on 127.0.0.1 whose three sites read FHIR bundles: each site process
reads only its own bundles (``medsilo site start KIT --data BUNDLES``) and the result equals
the in-process engine's on the same config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from medsilo.config import parse_config
from medsilo.deploy.loopback import SITES, Loopback, heart_experiment
from medsilo.runtime.simulation import run_federation
from tests.fhir.heart_bundles import fhir_section

from ..markers import FEDERATION_PROCESSES

pytestmark = [pytest.mark.slow, FEDERATION_PROCESSES]


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[Loopback]:
    section = fhir_section(tmp_path / "bundles")
    section["sites"] = [s for s in section["sites"] if s["name"] in SITES]  # type: ignore[attr-defined]
    experiment = heart_experiment(rounds=2)
    experiment["data"] = {"dataset": "fhir", "fhir": section, "standardize": "federated"}
    lb = Loopback(tmp_path, experiment)
    yield lb
    lb.stop_all()


def test_fhir_sites_match_the_engine(tmp_path: Path, loopback: Loopback) -> None:
    coordinator = loopback.start_coordinator()
    for site in loopback.sites:
        # start_site passes the bundled heart files as --data; click keeps the last --data
        bundles = tmp_path / "bundles" / f"{site}.ndjson"
        loopback.start_site(site, None, "--data", str(bundles))
    assert loopback.wait(coordinator, 600) == 0, loopback.all_logs()
    with np.load(tmp_path / "run" / "final_weights.npz") as npz:
        deployed = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    engine = run_federation(parse_config(loopback.experiment)).weights
    assert len(deployed) == len(engine)
    for a, b in zip(deployed, engine, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert [r["round"] for r in loopback.rounds()] == [1, 2]
