"""The SuperNode launcher shortens exactly Flower's idle poll and reply wait, leaves every
other sleep alone, and refuses a non-positive interval before starting anything; it makes
the SuperNode's object pulls retry soon (medsilo.deploy.object_pulls)."""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest
from flwr.supernode import start_client_internal

from medsilo.deploy import flower_contract as contract
from medsilo.deploy import supernode_launcher as launcher
from medsilo.deploy.object_pulls import FIRST_RETRY_S

#: Flower's module, whose ``time`` global the launcher replaces.
internal: Any = start_client_internal


@pytest.fixture(autouse=True)
def flowers_pulls(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Flower's object pull, given back to its module after each test (main patches it)."""
    monkeypatch.setattr(internal, "pull_objects", internal.pull_objects)
    return internal.pull_objects


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record sleeps instead of sleeping; Flower's module gets its ``time`` back afterwards."""
    monkeypatch.setattr(internal, "time", time)  # restored on teardown, whatever we patch
    seen: list[float] = []
    monkeypatch.setattr(time, "sleep", seen.append)
    return seen


def test_only_flowers_idle_poll_and_reply_wait_are_shortened(sleeps: list[float]) -> None:
    assert launcher.patch_poll_interval(0.2)
    clock = internal.time
    assert clock is not time
    clock.sleep(3)  # idle: no work from the SuperLink
    clock.sleep(0.5)  # waiting for a reply to push
    clock.sleep(1)  # any other sleep
    clock.sleep(0.1)  # shorter than the interval: never lengthened
    assert sleeps == [0.2, launcher.REPLY_CHECK_S, 1, 0.1]
    # Everything else of `time` is the real module's.
    assert clock.monotonic is time.monotonic and clock.time is time.time


def test_an_interval_longer_than_flowers_keeps_flowers_idle_poll(sleeps: list[float]) -> None:
    assert launcher.patch_poll_interval(10.0)
    internal.time.sleep(3)
    internal.time.sleep(0.5)
    assert sleeps == [3, launcher.REPLY_CHECK_S]  # the reply check is local: always short


def test_a_changed_flower_module_is_not_patched(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(internal, "time", object())
    before = internal.time
    assert not launcher.patch_poll_interval(0.2)
    assert internal.time is before
    assert "Flower's own poll interval" in capsys.readouterr().err


@pytest.mark.parametrize("interval", ["0", "-1"])
def test_non_positive_poll_interval_is_refused(
    interval: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[list[str]] = []
    monkeypatch.setattr("flwr.supernode.cli.flower_supernode", lambda: started.append(sys.argv))
    monkeypatch.setattr(internal, "time", time)
    with pytest.raises(SystemExit) as exit_:
        launcher.main(["--poll-interval", interval, "--", "--insecure"])
    assert exit_.value.code == 2
    assert "--poll-interval must be positive" in capsys.readouterr().err
    assert not started and internal.time is time


def test_arguments_after_the_separator_go_to_flower(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[list[str]] = []
    monkeypatch.setattr(
        "flwr.supernode.cli.flower_supernode", lambda: started.append(list(sys.argv))
    )
    monkeypatch.setattr(internal, "time", time)
    monkeypatch.setattr(sys, "argv", ["medsilo-supernode"])
    rest = ["--superlink", "127.0.0.1:9092", "--insecure", "--poll-interval", "1"]
    assert launcher.main(["--poll-interval", "0.3", "--", *rest]) == 0
    assert started == [["flower-supernode", *rest]]
    assert isinstance(internal.time, launcher._PollClock)


def test_without_poll_interval_flower_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[list[str]] = []
    monkeypatch.setattr(
        "flwr.supernode.cli.flower_supernode", lambda: started.append(list(sys.argv))
    )
    monkeypatch.setattr(internal, "time", time)
    monkeypatch.setattr(sys, "argv", ["medsilo-supernode"])
    assert launcher.main(["--", "--insecure"]) == 0
    assert started == [["flower-supernode", "--insecure"]] and internal.time is time


def test_the_supernodes_object_pulls_retry_soon(
    monkeypatch: pytest.MonkeyPatch, flowers_pulls: Any
) -> None:
    monkeypatch.setattr("flwr.supernode.cli.flower_supernode", lambda: None)
    monkeypatch.setattr(sys, "argv", ["medsilo-supernode"])
    assert launcher.main(["--", "--insecure"]) == 0
    assert internal.pull_objects.func is flowers_pulls
    assert internal.pull_objects.keywords == {"initial_backoff": FIRST_RETRY_S}


def test_a_flower_module_whose_source_differs_is_not_patched(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The guard is the exact source (SHA-256), not only the shape of the `time` global."""
    monkeypatch.setattr(internal, "time", time)
    monkeypatch.setitem(contract.PINS, contract.POLL_MODULE, "0" * 64)
    assert not launcher.patch_poll_interval(0.2)
    assert internal.time is time
    err = capsys.readouterr().err
    assert contract.POLL_MODULE in err and "Flower's own poll interval" in err


def test_warm_runs_the_supernode_in_process_isolation_beside_the_warm_superexec(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[list[str]] = []
    ports: list[int] = []
    monkeypatch.setattr(
        "flwr.supernode.cli.flower_supernode", lambda: started.append(list(sys.argv))
    )
    monkeypatch.setattr(launcher, "start_warm_superexec", ports.append)
    monkeypatch.setattr(sys, "argv", ["medsilo-supernode"])
    rest = ["--superlink", "127.0.0.1:9092", "--insecure", "--port", "9321"]
    assert launcher.main(["--warm", "--", *rest]) == 0
    assert ports == [9321]
    assert started == [["flower-supernode", *rest, "--isolation", "process"]]
