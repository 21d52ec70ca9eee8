"""The straggler deadline's logic on a fake clock, and its refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.config import parse_config
from medsilo.deploy.loopback import heart_experiment
from medsilo.runtime.flower.straggler import StragglerDeadline, straggler_problem


def test_the_deadline_starts_when_the_counted_quorum_has_replied() -> None:
    deadline = StragglerDeadline(grace_s=5.0, quorum=2, counted=frozenset({1, 2, 3}))
    assert not deadline.expired([], now=100.0)
    assert not deadline.expired([1, 9, 9], now=200.0)  # 9 only evaluates: not counted
    assert not deadline.expired([1, 1], now=201.0)  # the same node twice is one reply
    assert not deadline.expired([1, 3], now=300.0)  # quorum: armed at 300
    assert deadline.armed_at == 300.0 and not deadline.fired
    assert not deadline.expired([1, 3], now=304.9)
    assert deadline.expired([1, 3], now=305.0)
    assert deadline.fired


def test_a_zero_grace_ends_the_wait_as_soon_as_the_quorum_replied() -> None:
    deadline = StragglerDeadline(grace_s=0.0, quorum=1, counted=frozenset({4}))
    assert not deadline.expired([5], now=1.0)
    assert deadline.expired([4], now=2.0)


def test_straggler_problem_refuses_negative_and_secure_aggregation() -> None:
    plain = parse_config(heart_experiment(1, local_steps=1, lr=0.05))
    secure = parse_config(
        heart_experiment(1, local_steps=1, lr=0.05) | {"secure_aggregation": {"enabled": True}}
    )
    assert straggler_problem(plain, None) is None
    assert straggler_problem(plain, 0.0) is None
    assert straggler_problem(secure, None) is None  # not asked for: nothing to refuse
    assert "0 or more" in (straggler_problem(plain, -1.0) or "")
    assert "0 or more" in (straggler_problem(plain, float("nan")) or "")
    assert "secure aggregation" in (straggler_problem(secure, 3.0) or "")


@pytest.mark.parametrize("value", ["-1", "-0.5"])
def test_a_negative_straggler_timeout_exits_2_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "coordinator",
            "start",
            "no-such-kit",
            "--config",
            "no-such.yaml",
            "--out",
            "run",
            "--straggler-timeout",
            value,
        ],
    )
    assert result.exit_code == 2
    assert "--straggler-timeout" in result.output
    assert list(tmp_path.iterdir()) == []  # nothing written
