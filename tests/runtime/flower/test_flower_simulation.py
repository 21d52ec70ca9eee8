"""End to end through Flower's simulation runtime (Ray): same results as the engine.

Each test starts and stops Ray (10-20 s on a small machine), so there are only four.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pytest

from medsilo.data.base import ArrayData, FederatedData, SiteData
from medsilo.data.registry import build_federation
from medsilo.runtime.flower import FlowerResult, FlowerRunError, run_flower_simulation
from medsilo.runtime.simulation import run_federation

from ...conftest import small_config, synthetic_federation
from ...markers import FEDERATION_PROCESSES

pytestmark = [pytest.mark.slow, FEDERATION_PROCESSES]


def _ray_is_down() -> bool:
    import ray

    return not ray.is_initialized()


def assert_records_match(a: object, b: object, path: str = "rounds") -> None:
    """Same structure and values; floats equal to 1e-6 (per-site numbers come from workers)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):  # dicts and typed round records
        keys = set(a) - {"wall_s"}
        assert keys == set(b) - {"wall_s"}, path
        for k in keys:
            assert_records_match(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_records_match(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-9), path
    else:
        assert a == b, path


def test_fedavg_on_three_heart_disease_hospitals_matches_the_engine() -> None:
    cfg = small_config(training={"rounds": 3, "local_steps": 10, "batch_size": 4, "lr": 0.01})
    fed = build_federation(cfg.data, cfg.seed).without("va")
    assert len(fed.sites) == 3
    env_before = {k: os.environ.get(k) for k in ("FLWR_HOME", "FLWR_TELEMETRY_ENABLED")}
    seen: list[dict] = []

    result = run_flower_simulation(cfg, fed, on_round=seen.append)

    engine = run_federation(cfg, fed)
    assert isinstance(result, FlowerResult)
    for a, b in zip(result.weights, engine.weights, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert_records_match(result.rounds, engine.rounds)
    assert [r["round"] for r in result.rounds] == [1, 2, 3]
    assert seen == result.rounds
    assert 0 < result.startup_s < result.wall_s and result.rounds_s > 0
    assert _ray_is_down()
    assert {k: os.environ.get(k) for k in env_before} == env_before


def test_secure_aggregation_over_ray_matches_the_engine() -> None:
    # Four protocol phases a round; each site's protocol state must survive in
    # context.state between them, whichever Ray worker serves the next message.
    cfg = small_config(
        training={"rounds": 2, "local_steps": 10, "batch_size": 4, "lr": 0.01},
        secure_aggregation={"enabled": True},
    )
    fed = build_federation(cfg.data, cfg.seed).without("va")

    result = run_flower_simulation(cfg, fed)

    engine = run_federation(cfg, fed)
    for a, b in zip(result.weights, engine.weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert_records_match(result.rounds, engine.rounds)
    for r in result.rounds:
        assert r["secure_aggregation"]["survivors"] == fed.site_names
    assert _ray_is_down()


def test_scaffold_with_partial_participation_keeps_site_state_across_rounds() -> None:
    fed = synthetic_federation(num_sites=3)
    cfg = small_config(
        algorithm={"name": "scaffold"},
        training={"rounds": 3, "local_steps": 8, "batch_size": 8, "lr": 0.1, "fraction": 0.67},
    )
    engine = run_federation(cfg, fed)
    assert all(len(r["sites"]) == 2 for r in engine.rounds)  # some site trains twice

    result = run_flower_simulation(cfg, fed)

    for a, b in zip(result.weights, engine.weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert_records_match(result.rounds, engine.rounds)
    for site, state in engine.site_states.items():
        assert set(result.site_states[site]) == set(state)
        for a, b in zip(result.site_states[site].get("c", []), state.get("c", []), strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert _ray_is_down()


def test_a_site_raising_makes_the_run_fail_loudly() -> None:
    fed = synthetic_federation()
    bad = fed.sites[1]
    broken = SiteData(bad.name, ArrayData(bad.train.x[:, :4].copy(), bad.train.y), bad.test)
    fed = FederatedData(fed.name, [fed.sites[0], broken, fed.sites[2]], fed.test, 2, "binary")

    with pytest.raises(FlowerRunError, match=r"site 'h1' failed: RuntimeError: mat1 and mat2"):
        run_flower_simulation(small_config(), fed)
    assert _ray_is_down()
