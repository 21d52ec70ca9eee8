"""The network model: seconds per transfer and per round, and the engine's use of it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from medsilo.network import NetworkProfile, round_seconds, transfer_seconds
from medsilo.runtime.simulation import run_federation

from .conftest import small_config, synthetic_federation


def test_transfer_seconds_is_latency_plus_size_over_bandwidth() -> None:
    p = NetworkProfile(uplink_mbps=5, downlink_mbps=100, latency_ms=20)
    assert transfer_seconds(0, p, "up") == pytest.approx(0.02)
    assert transfer_seconds(1_000_000, p, "up") == pytest.approx(0.02 + 8 / 5)
    assert transfer_seconds(1_000_000, p, "down") == pytest.approx(0.02 + 8 / 100)
    with pytest.raises(ValueError):
        transfer_seconds(-1, p, "up")


def test_round_is_the_slowest_site() -> None:
    fast = NetworkProfile(uplink_mbps=100, downlink_mbps=100, latency_ms=20)
    rural = NetworkProfile(uplink_mbps=5, downlink_mbps=20, latency_ms=40)
    t = round_seconds({"a": (10**6, 10**6), "b": (10**6, 10**6)}, {"a": fast, "b": rural})
    assert t == pytest.approx(0.04 + 8 / 20 + 0.04 + 8 / 5)
    assert round_seconds({}, {}) == 0.0


def test_profile_validation() -> None:
    with pytest.raises(ValidationError):
        NetworkProfile(uplink_mbps=0)
    with pytest.raises(ValidationError):
        NetworkProfile.model_validate({"uplink_mbps": 1, "bogus": 2})


def test_engine_sim_time_uses_profiles_and_encoded_bytes() -> None:
    fed = synthetic_federation(num_sites=3)
    base = run_federation(small_config(), fed)
    rec = base.rounds[0]
    n_params = sum(w.size for w in base.weights)
    dense = len(base.weights) * 5 + 4 * n_params  # synthetic deltas have no exact zeros
    assert rec["bytes_up"] == 3 * dense and rec["bytes_down"] == 3 * dense
    default = NetworkProfile()
    expected = transfer_seconds(dense, default, "down") + transfer_seconds(dense, default, "up")
    assert rec["sim_time_s"] == pytest.approx(expected)
    slow = run_federation(
        small_config(
            sites={"overrides": {"h1": {"network": {"uplink_mbps": 0.001, "latency_ms": 500}}}}
        ),
        fed,
    )
    assert slow.rounds[0]["sim_time_s"] > rec["sim_time_s"] + 0.9
    assert 0.0 <= rec["extra"]["leakage"] <= 1.0 and 0.0 <= rec["extra"]["sparsity"] <= 1.0
