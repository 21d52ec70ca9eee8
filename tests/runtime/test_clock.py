"""The simulated clock: compute time, availability windows, dropouts, synchronous rounds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from medsilo.config import ConfigError, SiteRecord, parse_config
from medsilo.network import (
    Availability,
    ComputeProfile,
    NetworkProfile,
    compute_seconds,
    finish_time,
    next_available,
    transfer_seconds,
)
from medsilo.runtime.clock import SimClock
from medsilo.runtime.records import broadcast_bytes
from medsilo.runtime.simulation import run_federation

from ..conftest import small_config, synthetic_federation

FAST_LINK = {"uplink_mbps": 100, "downlink_mbps": 100, "latency_ms": 20}


def _sites(default: dict[str, Any], **overrides: dict[str, Any]) -> dict[str, Any]:
    return {"default": default, "overrides": overrides}


def test_compute_seconds_is_examples_over_speed_times_slowdown() -> None:
    assert compute_seconds(5000, ComputeProfile()) == 0.0  # not charged by default
    assert compute_seconds(5000, ComputeProfile(examples_per_s=1000)) == pytest.approx(5.0)
    slow = ComputeProfile(examples_per_s=1000, slowdown=10)
    assert compute_seconds(5000, slow) == pytest.approx(50.0)
    with pytest.raises(ValueError):
        compute_seconds(-1, slow)


def test_slowdown_without_speed_and_bad_windows_are_refused() -> None:
    with pytest.raises(ValidationError, match="examples_per_s"):
        ComputeProfile(slowdown=10)
    with pytest.raises(ValidationError, match="both period_s and on_s"):
        Availability(period_s=10)
    with pytest.raises(ValidationError, match="cannot exceed"):
        Availability(period_s=10, on_s=11)
    with pytest.raises(ValidationError):
        Availability(dropout=1.5)
    with pytest.raises(ConfigError, match=r"sites\.default\.compute"):
        parse_config(
            {
                "data": {"dataset": "heart_disease"},
                "training": {"local_steps": 1},
                "sites": {"default": {"compute": {"slowdown": 2}}},
            }
        )


def test_availability_windows_pause_work_outside_them() -> None:
    av = Availability(period_s=10, on_s=4, offset_s=2)  # available [2, 6), [12, 16), ...
    assert next_available(0.0, av) == 2.0
    assert next_available(3.0, av) == 3.0
    assert next_available(7.0, av) == 12.0
    assert next_available(16.0, av) == 22.0
    assert finish_time(3.0, 2.0, av) == pytest.approx(5.0)
    # 3 s in [3, 6), the remaining 2 s in [12, 14)
    assert finish_time(3.0, 5.0, av) == pytest.approx(14.0)
    # 9 s from t=0: [2, 6) + [12, 16) + 1 s of [22, 26)
    assert finish_time(0.0, 9.0, av) == pytest.approx(23.0)
    always = Availability()
    assert next_available(7.5, always) == 7.5
    assert finish_time(7.5, 2.0, always) == 9.5


def _clock(**records: SiteRecord) -> SimClock:
    return SimClock(0, list(records), records, batch_size=8)


def test_dropout_draws_are_seeded_and_respect_the_probability() -> None:
    names = [f"s{i}" for i in range(4)]
    recs = {
        n: SiteRecord(availability=Availability(dropout=p))
        for n, p in zip(names, [0.0, 1.0, 0.3, 0.3], strict=True)
    }
    a = SimClock(7, names, recs, 8)
    b = SimClock(7, names, recs, 8)
    other = SimClock(8, names, recs, 8)
    draws = [a.dropped(k, names) for k in range(400)]
    assert draws == [b.dropped(k, names) for k in range(400)]
    assert draws != [other.dropped(k, names) for k in range(400)]
    assert not any("s0" in d for d in draws) and all("s1" in d for d in draws)
    share = np.mean(["s2" in d for d in draws])
    assert 0.2 < share < 0.4
    # the two sites with the same probability draw independently
    assert [("s2" in d) for d in draws] != [("s3" in d) for d in draws]


def test_sync_round_waits_for_the_slowest_or_stops_at_the_timeout() -> None:
    fast = SiteRecord(compute=ComputeProfile(examples_per_s=100))
    slow = SiteRecord(compute=ComputeProfile(examples_per_s=100, slowdown=10))
    clock = _clock(a=fast, b=slow)
    ups, ex = {"a": 1000, "b": 1000}, {"a": 200, "b": 200}
    t = clock.sync_round(10.0, ["a", "b"], [], 1000, ups, ex, timeout_s=100.0)
    link = transfer_seconds(1000, NetworkProfile(), "down") + transfer_seconds(
        1000, NetworkProfile(), "up"
    )
    assert t.on_time == ["a", "b"] and not t.late and not t.dropped
    assert t.duration_s == pytest.approx(link + 20.0)  # b: 200 examples at 10 / s
    assert t.fields()["sim_clock_s"] == pytest.approx(10.0 + link + 20.0)
    # b later than the timeout: the round ends at the timeout without it
    t = clock.sync_round(0.0, ["a", "b"], [], 1000, ups, ex, timeout_s=10.0)
    assert t.on_time == ["a"] and t.late == ["b"] and t.duration_s == 10.0
    # b dropped out: the coordinator cannot know until the timeout
    t = clock.sync_round(0.0, ["a", "b"], ["b"], 1000, {"a": 1000}, {"a": 200}, 100.0)
    assert t.on_time == ["a"] and t.dropped == ["b"] and t.duration_s == 100.0


def test_engine_round_time_charges_compute_of_the_slowest_site() -> None:
    fed = synthetic_federation(num_sites=3)
    cfg = small_config(
        sites=_sites(
            {"compute": {"examples_per_s": 50}, "network": FAST_LINK},
            h2={"compute": {"examples_per_s": 50, "slowdown": 10}, "network": FAST_LINK},
        )
    )
    res = run_federation(cfg, fed)
    rec = res.rounds[0]
    steps, batch = cfg.training.local_steps, cfg.training.batch_size
    assert steps is not None
    link = NetworkProfile(**FAST_LINK)
    down = rec["bytes_down"] // 3
    slow = (
        transfer_seconds(down, link, "down")
        + 10 * steps * batch / 50
        + transfer_seconds(rec["bytes_up_site"]["h2"], link, "up")
    )
    assert rec["sim_time_s"] == pytest.approx(slow)
    assert rec["sim_compute_s"] == pytest.approx(10 * steps * batch / 50)
    clocks = [r["sim_clock_s"] for r in res.rounds]
    assert clocks == pytest.approx(np.cumsum([r["sim_time_s"] for r in res.rounds]))
    assert down == broadcast_bytes(res.weights, {})


def test_a_site_that_never_returns_does_not_block_sync_rounds() -> None:
    fed = synthetic_federation(num_sites=3)
    base = run_federation(small_config(), fed)
    cfg = small_config(
        sites=_sites({}, h1={"availability": {"dropout": 1.0}}),
        asynchrony={"mode": "sync", "round_timeout_s": 30.0},
    )
    res = run_federation(cfg, fed)
    assert len(res.rounds) == cfg.training.rounds
    for rec in res.rounds:
        assert rec["dropped"] == ["h1"] and not rec["skipped"]
        assert rec["sim_time_s"] == 30.0  # waited until the timeout, then aggregated the rest
        assert set(rec["bytes_up_site"]) == {"h0", "h2"}
    assert res.rounds[-1]["sim_clock_s"] == 90.0
    # the other two sites' updates moved the model (to somewhere else than with h1)
    assert any(not np.allclose(x, y) for x, y in zip(base.weights, res.weights, strict=True))
    # everyone gone: every round is skipped, the model stays where it started
    none = run_federation(small_config(sites=_sites({"availability": {"dropout": 1.0}})), fed)
    assert all(r["skipped"] for r in none.rounds)
    assert none.rounds[-1]["sim_clock_s"] == 3 * 3600.0  # default round timeout


def test_sync_rounds_respect_availability_windows() -> None:
    fed = synthetic_federation(num_sites=3)
    # h0 can work only during [50, 60) of every 100 s
    window = {"period_s": 100.0, "on_s": 10.0, "offset_s": 50.0}
    cfg = small_config(sites=_sites({}, h0={"availability": window}))
    res = run_federation(cfg, fed)
    first, second = res.rounds[0]["sim_clock_s"], res.rounds[1]["sim_clock_s"]
    assert 50.0 < first < 51.0  # waited for the window, then a sub-second exchange
    assert second - first < 1.0  # round 2 starts inside the window: no wait
    assert res.rounds[0]["dropped"] == [] and res.rounds[0]["late"] == []


def test_the_clock_is_deterministic_for_a_seed() -> None:
    fed = synthetic_federation(num_sites=3)
    cfg = small_config(
        sites=_sites(
            {"availability": {"dropout": 0.4}, "compute": {"examples_per_s": 40}},
            h2={"compute": {"examples_per_s": 40, "slowdown": 3}},
        ),
        training={"rounds": 6, "local_steps": 5, "batch_size": 8, "lr": 0.1},
        asynchrony={"mode": "sync", "round_timeout_s": 20.0},
    )
    a, b = run_federation(cfg, fed), run_federation(cfg, fed)
    keys = ("sim_time_s", "sim_clock_s", "dropped", "late", "sites", "bytes_up")
    assert [{k: r[k] for k in keys} for r in a.rounds] == [
        {k: r[k] for k in keys} for r in b.rounds
    ]
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(r["dropped"] for r in a.rounds)  # the draw did something
    c = run_federation(cfg.with_overrides(seed=5), fed)
    assert [r["dropped"] for r in c.rounds] != [r["dropped"] for r in a.rounds]
