"""The durable SuperLink keeps its link state in SQLite and message payloads in memory, so
a large update never holds SQLite's write lock (docs/deployment.md, "Resilience and
resume"); anything but a SQLite file goes to Flower's own factories."""

from __future__ import annotations

from pathlib import Path

import pytest
from flwr.server.superlink.linkstate.sql_linkstate import SqlLinkState
from flwr.supercore.constant import FLWR_IN_MEMORY_DB_NAME
from flwr.supercore.object_store.in_memory_object_store import InMemoryObjectStore
from flwr.supercore.object_store.sql_object_store import SqlObjectStore
from flwr.superlink import main as superlink_main
from flwr.superlink.federation import NoOpFederationManager

from medsilo.deploy import superlink_launcher

NAME = "get_objectstore_linkstate_factories"


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(superlink_main, NAME, getattr(superlink_main, NAME))  # undone after
    assert superlink_launcher.keep_payloads_in_memory()


@pytest.mark.usefixtures("patched")
def test_a_sqlite_database_keeps_the_link_state_on_disk_and_payloads_in_memory(
    tmp_path: Path,
) -> None:
    database = tmp_path / "superlink.db"
    objects, links = getattr(superlink_main, NAME)(str(database), NoOpFederationManager())
    assert isinstance(objects.store(), InMemoryObjectStore)
    state = links.state()
    assert isinstance(state, SqlLinkState) and state.object_store is objects.store()
    assert database.exists()


@pytest.mark.usefixtures("patched")
def test_flowers_in_memory_state_is_left_to_flower() -> None:
    objects, links = getattr(superlink_main, NAME)(FLWR_IN_MEMORY_DB_NAME, NoOpFederationManager())
    assert isinstance(objects.store(), InMemoryObjectStore)
    assert not isinstance(links.state(), SqlLinkState)


def test_without_the_patch_flower_puts_payloads_in_the_same_sqlite_file(tmp_path: Path) -> None:
    """What the launcher changes (if Flower stops doing this, the launcher can go)."""
    objects, _ = getattr(superlink_main, NAME)(
        str(tmp_path / "superlink.db"), NoOpFederationManager()
    )
    assert isinstance(objects.store(), SqlObjectStore)


def test_a_changed_flower_is_refused_and_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    before = getattr(superlink_main, NAME)
    monkeypatch.setattr(
        superlink_launcher, "contract_problems", lambda modules: ["flwr.superlink.main changed"]
    )
    assert superlink_launcher.keep_payloads_in_memory() is False
    assert getattr(superlink_main, NAME) is before
