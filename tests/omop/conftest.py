"""The session's PostgreSQL cluster (medsilo.omop.postgres_cluster), stopped at the end, and
the four heart-disease hospitals written into its database ``heart``."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from medsilo.omop.postgres_cluster import Cluster, server_account, server_binaries
from tests.omop.heart_cdm import HOSPITALS, write_hospitals


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    binaries = server_binaries()
    if binaries is None:
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) not found: install postgresql")
    with tempfile.TemporaryDirectory(prefix="medsilo-pg-") as folder:
        cluster = Cluster(Path(folder), binaries, server_account())
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()


@pytest.fixture(scope="session")
def heart_db(postgres: Cluster) -> str:
    """Database ``heart``: schema ``<hospital>`` per hospital, read by ``reader_<hospital>``."""
    write_hospitals(postgres, "heart", {h: h for h in HOSPITALS})
    return "heart"
