"""The session's PostgreSQL cluster (medsilo.omop.postgres_cluster), stopped at the end."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from medsilo.omop.postgres_cluster import Cluster, server_account, server_binaries


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
