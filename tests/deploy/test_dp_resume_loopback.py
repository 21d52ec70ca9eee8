"""A deployed DP-SGD federation on 127.0.0.1 whose coordinator is killed and resumed.

The coordinator (SuperLink and ServerApp with it) is killed with ``kill -9`` once round 2's
checkpoint exists and restarted with ``--resume``: the final model equals the in-process
engine's uninterrupted run and every round's epsilon (per site too) equals the engine's, so
the accountant's state came back from the checkpoint and the sites' noise streams (Poisson
batches, Opacus noise, seeded per round) continued exactly (docs/privacy.md, "Checkpoints
and resume").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from medsilo.config import parse_config
from medsilo.deploy.loopback import Loopback, heart_experiment, kill, wait_until
from medsilo.runtime.simulation import run_federation

from ..markers import FEDERATION_PROCESSES

pytestmark = [pytest.mark.slow, FEDERATION_PROCESSES]

DP_SGD = {"dp_sgd": {"noise_multiplier": 1.0, "max_grad_norm": 1.0}}


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[Loopback]:
    lb = Loopback(tmp_path, heart_experiment(4) | {"privacy": DP_SGD})
    yield lb
    lb.stop_all()


def test_a_dp_sgd_coordinator_killed_after_round_2_resumes_with_the_engines_epsilon(
    tmp_path: Path, loopback: Loopback
) -> None:
    lb = loopback
    coordinator = lb.start_coordinator()
    for site in lb.sites:
        lb.start_site(site)
    wait_until(
        (tmp_path / "run" / "checkpoints" / "round-0002.json").exists, 600, "round 2's checkpoint"
    )
    kill(coordinator)  # kill -9 the coordinator, its SuperLink and its ServerApp
    resumed = lb.start_coordinator("run", "--resume")
    assert lb.wait(resumed, 300) == 0, lb.all_logs()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["resumed_after_round"] >= 2

    engine = run_federation(parse_config(lb.experiment))
    records = lb.rounds()
    assert [r["round"] for r in records] == [1, 2, 3, 4]
    for deployed, straight in zip(records, engine.rounds, strict=True):
        assert deployed["privacy"] == straight["privacy"]  # epsilon, per site, sigma
    with np.load(tmp_path / "run" / "final_weights.npz") as npz:
        final = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    for a, b in zip(final, engine.weights, strict=True):
        np.testing.assert_array_equal(a, b)
