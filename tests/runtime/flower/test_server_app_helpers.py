"""Coordinator helpers of the Flower ServerApp: pooled metrics from per-site evaluations,
and the short-poll exchange that replaces Flower's 3 s reply poll."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from flwr.app import Message, RecordDict
from flwr.app.constants import DEFAULT_TTL

from medsilo.runtime.flower.server_app import pooled_from_sites, send_and_collect
from medsilo.runtime.flower.straggler import StragglerDeadline

from .test_apps_inprocess import task_identity  # noqa: F401  (Flower messages need one)


def test_pooled_metrics_are_example_weighted() -> None:
    pooled = pooled_from_sites(
        {
            "a": {"loss": 1.0, "accuracy": 0.5, "n": 10},
            "b": {"loss": 0.4, "accuracy": 0.9, "n": 30},
            # A site without test examples adds nothing, not even a NaN.
            "c": {"loss": float("nan"), "accuracy": float("nan"), "n": 0},
        }
    )
    assert pooled["n"] == 40
    assert pooled["loss"] == pytest.approx((1.0 * 10 + 0.4 * 30) / 40)
    assert pooled["accuracy"] == pytest.approx((0.5 * 10 + 0.9 * 30) / 40)


def test_pooled_metrics_without_examples() -> None:
    for per_site in ({}, {"a": {"loss": 0.3, "accuracy": 1.0, "n": 0}}):
        pooled = pooled_from_sites(per_site)
        assert pooled["n"] == 0
        assert math.isnan(pooled["loss"]) and math.isnan(pooled["accuracy"])


def _reply(to: str) -> Any:
    """The reply to message ``m<i>``, from node ``i + 1`` (as :func:`_messages` addresses)."""
    return SimpleNamespace(
        metadata=SimpleNamespace(reply_to_message_id=to, src_node_id=int(to[1:]) + 1)
    )


class FakeGrid:
    """push_messages/pull_messages with replies released poll by poll."""

    def __init__(self, schedule: Sequence[Sequence[str]]) -> None:
        self.schedule = list(schedule)
        self.pulls: list[set[str]] = []
        self.pushed: list[Any] = []
        self.send_and_receive_calls: list[tuple[int, float | None]] = []

    def push_messages(self, messages: Iterable[Any]) -> list[str]:
        self.pushed = list(messages)
        return [f"m{i}" for i in range(len(self.pushed))]

    def pull_messages(self, message_ids: Iterable[str]) -> list[Any]:
        asked = set(message_ids)
        self.pulls.append(asked)
        ready = self.schedule.pop(0) if self.schedule else []
        return [_reply(m) for m in ready if m in asked]

    def send_and_receive(self, messages: Iterable[Any], *, timeout: float | None) -> list[Any]:
        sent = list(messages)
        self.send_and_receive_calls.append((len(sent), timeout))
        return [_reply(f"m{i}") for i in range(len(sent))]


def _messages(n: int) -> list[Any]:
    """Stand-ins: send_and_collect hands messages to the grid without looking inside."""
    ttl = SimpleNamespace(ttl=43200.0)
    return [SimpleNamespace(dst_node_id=i + 1, metadata=ttl) for i in range(n)]


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the poll sleeps instead of sleeping."""
    seen: list[float] = []
    monkeypatch.setattr(time, "sleep", seen.append)
    return seen


def test_replies_are_collected_over_several_polls(sleeps: list[float]) -> None:
    grid = FakeGrid([["m1"], [], ["m0", "m2"]])
    replies = send_and_collect(grid, _messages(3), timeout_s=60.0, poll_interval_s=0.05)  # type: ignore[arg-type]
    assert sorted(r.metadata.reply_to_message_id for r in replies) == ["m0", "m1", "m2"]
    # Each poll asks only for what is still missing; no sleep after the last reply.
    assert grid.pulls == [{"m0", "m1", "m2"}, {"m0", "m2"}, {"m0", "m2"}]
    assert sleeps == [0.05, 0.05]
    assert len(grid.pushed) == 3 and not grid.send_and_receive_calls


def test_timeout_returns_what_arrived(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    monkeypatch.setattr(time, "sleep", sleep)
    grid = FakeGrid([["m0"]])  # m1 never answers
    replies = send_and_collect(grid, _messages(2), timeout_s=1.0, poll_interval_s=0.25)  # type: ignore[arg-type]
    assert [r.metadata.reply_to_message_id for r in replies] == ["m0"]
    # Polled until the deadline (1 s at 0.25 s per poll), then gave up.
    assert len(grid.pulls) == 5
    assert clock[0] == pytest.approx(101.0)


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """``time.monotonic`` reads this clock and ``time.sleep`` advances it."""
    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    monkeypatch.setattr(time, "sleep", sleep)
    return clock


def test_the_straggler_deadline_ends_the_wait_long_before_the_timeout(
    fake_clock: list[float],
) -> None:
    grid = FakeGrid([["m0", "m1"]])  # nodes 1 and 2 answer at once, node 3 never
    straggler = StragglerDeadline(grace_s=1.0, quorum=2, counted=frozenset({1, 2, 3}))
    replies = send_and_collect(grid, _messages(3), 3600.0, 0.25, straggler)  # type: ignore[arg-type]
    assert sorted(r.metadata.reply_to_message_id for r in replies) == ["m0", "m1"]
    assert straggler.armed_at == 100.0 and straggler.fired
    assert len(grid.pulls) == 5  # at 100, 100.25, ..., 101: one grace second, then stop
    assert fake_clock[0] == pytest.approx(101.0)


def test_without_the_quorum_the_straggler_deadline_never_starts(fake_clock: list[float]) -> None:
    grid = FakeGrid([["m0"]])  # one reply: the quorum of 2 is never reached
    straggler = StragglerDeadline(grace_s=0.0, quorum=2, counted=frozenset({1, 2}))
    replies = send_and_collect(grid, _messages(2), 1.0, None, straggler)  # type: ignore[arg-type]
    assert [r.metadata.reply_to_message_id for r in replies] == ["m0"]
    assert straggler.armed_at is None and not straggler.fired
    # No poll interval: pulled at Flower's 3 s until the reply timeout ended the wait.
    assert len(grid.pulls) == 2 and not grid.send_and_receive_calls
    assert fake_clock[0] == pytest.approx(103.0)


def test_without_poll_interval_flower_does_the_waiting(sleeps: list[float]) -> None:
    grid = FakeGrid([])
    replies = send_and_collect(grid, _messages(2), timeout_s=7.0, poll_interval_s=None)  # type: ignore[arg-type]
    assert len(replies) == 2
    assert grid.send_and_receive_calls == [(2, 7.0)]
    assert not grid.pulls and not grid.pushed and not sleeps


def test_nothing_to_send(sleeps: list[float]) -> None:
    grid = FakeGrid([])
    assert send_and_collect(grid, [], timeout_s=1.0, poll_interval_s=0.1) == []  # type: ignore[arg-type]
    assert not grid.pulls and not grid.pushed


def _flower_messages(n: int) -> list[Message]:
    return [Message(RecordDict(), dst_node_id=i + 1, message_type="train") for i in range(n)]


@pytest.mark.usefixtures("task_identity")
def test_each_message_expires_with_its_exchange(sleeps: list[float]) -> None:
    """The TTL Flower keeps a message for is the exchange's deadline, not its 12 hours."""
    polled, waited = _flower_messages(2), _flower_messages(2)
    assert {m.metadata.ttl for m in polled} == {float(DEFAULT_TTL)}
    send_and_collect(FakeGrid([["m0", "m1"]]), polled, timeout_s=90.0, poll_interval_s=0.1)  # type: ignore[arg-type]
    send_and_collect(FakeGrid([]), waited, timeout_s=45.0, poll_interval_s=None)  # type: ignore[arg-type]
    assert [m.metadata.ttl for m in polled + waited] == [90.0, 90.0, 45.0, 45.0]


@pytest.mark.usefixtures("task_identity")
def test_without_a_deadline_flowers_ttl_stays(sleeps: list[float]) -> None:
    messages = _flower_messages(1)
    send_and_collect(FakeGrid([]), messages, timeout_s=None, poll_interval_s=None)  # type: ignore[arg-type]
    assert messages[0].metadata.ttl == float(DEFAULT_TTL)
