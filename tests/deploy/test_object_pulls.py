"""A Flower object pull retries first after FIRST_RETRY_S at the three patched call sites,
still through Flower's own pull (same tries, doubling and deadline), only when pinned."""

from __future__ import annotations

import importlib
import threading
from types import SimpleNamespace

import pytest
from flwr.supercore.inflatable import inflatable_utils
from flwr.supercore.inflatable.inflatable_utils import ObjectUnavailableError

from medsilo.deploy import flower_contract as contract
from medsilo.deploy import object_pulls

SITES = (object_pulls.SUPERNODE_PULLS, object_pulls.CLIENTAPP_PULLS, object_pulls.COORDINATOR_PULLS)


@pytest.fixture
def restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every call site's pull function is Flower's own during the test (an in-process
    deployed coordinator run earlier in this process may have shortened it) and is what it
    was again after the test."""
    for module_name, function in SITES:
        module = importlib.import_module(module_name)
        monkeypatch.setattr(module, function, getattr(inflatable_utils, function))


@pytest.mark.usefixtures("restored")
@pytest.mark.parametrize("site", SITES, ids=lambda s: s[0])
def test_each_call_site_calls_flowers_pull_with_the_short_first_retry(
    site: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module_name, function = site
    module = importlib.import_module(module_name)
    flowers = getattr(module, function)
    assert flowers is getattr(inflatable_utils, function)  # Flower's own, before
    assert object_pulls.shorten_first_retry(site) == []
    assert object_pulls.shorten_first_retry(site) == []  # again: not wrapped twice
    patched = getattr(module, function)
    assert patched.func is flowers
    assert patched.keywords == {"initial_backoff": object_pulls.FIRST_RETRY_S}


@pytest.mark.usefixtures("restored")
def test_a_missing_object_is_retried_after_the_short_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Flower's pull, through the patched global: the waits it makes between tries."""
    module_name, function = object_pulls.SUPERNODE_PULLS
    assert object_pulls.shorten_first_retry(object_pulls.SUPERNODE_PULLS) == []
    waits: list[float | None] = []
    monkeypatch.setattr(inflatable_utils.random, "uniform", lambda a, b: 0.0)  # no jitter

    class Waits(threading.Event):  # Flower's backoff waits on its early-stop event
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout)
            return False

    monkeypatch.setattr(
        inflatable_utils, "threading", SimpleNamespace(Lock=threading.Lock, Event=Waits)
    )
    tries = iter([False, False, True])

    def pull(object_id: str) -> bytes:
        if not next(tries):
            raise ObjectUnavailableError(object_id)
        return b"content"

    pulled = getattr(importlib.import_module(module_name), function)(["a"], pull)
    assert pulled == {"a": b"content"}
    first = object_pulls.FIRST_RETRY_S
    assert waits == [first, 2 * first]  # Flower's doubling, from the short first retry


@pytest.mark.usefixtures("restored")
def test_a_changed_flower_module_keeps_flowers_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    module_name, function = object_pulls.COORDINATOR_PULLS
    module = importlib.import_module(module_name)
    flowers = getattr(module, function)
    monkeypatch.setitem(contract.PINS, contract.INFLATABLE_MODULE, "0" * 64)
    (problem,) = object_pulls.shorten_first_retry(object_pulls.COORDINATOR_PULLS)
    assert contract.INFLATABLE_MODULE in problem and getattr(module, function) is flowers
