"""A provisioned two-site federation in a temporary folder, shared by the deploy tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsilo.deploy.kits import Kit, provision
from medsilo.deploy.spec import FederationSpec, parse_federation

RAW = {
    "federation": "testfed",
    "coordinator": {"address": "coord.example.org", "extra_names": ["10.1.2.3"], "port": 8443},
    "sites": [{"name": "site_a"}, {"name": "site-b"}],
    "validity_days": 30,
}


@pytest.fixture(scope="module")
def spec() -> FederationSpec:
    return parse_federation(RAW)


@pytest.fixture(scope="module")
def provisioned(
    spec: FederationSpec, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[Kit]]:
    out = tmp_path_factory.mktemp("kits")
    return out, provision(spec, out)


@pytest.fixture
def federation(tmp_path: Path) -> Path:
    """A fresh provisioning folder for tests that change it (software attestation allowed)."""
    out = tmp_path / "kits"
    provision(parse_federation(RAW | {"enrolment": {"allowed_backends": ["software"]}}), out)
    return out
