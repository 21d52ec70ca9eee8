"""The Flower ServerApp leaves absent sites out exactly like the in-process engine."""

from __future__ import annotations

import pytest
from flwr.supercore.task_identity import TaskIdentity

from medsilo.runtime.simulation import run_federation
from tests.conftest import small_config, synthetic_federation
from tests.runtime.flower.test_apps_inprocess import TRAIN, assert_same_run, run_in_process


@pytest.fixture(autouse=True)
def task_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for attr, value in [("_run_id", 1), ("_task_id", 1), ("_node_id", 0)]:
        monkeypatch.setattr(TaskIdentity, attr, value)


def test_flower_apps_leave_a_withdrawn_site_out_like_the_engine() -> None:
    fed = synthetic_federation(num_sites=4)
    cfg = small_config(
        training=TRAIN | {"fraction": 0.75},
        governance={
            "withdrawn_sites": ["h1"],
            "cohorts": {
                f"h{i}": {"version": "v1", "collected_until": "2026-10-01"} for i in range(4)
            },
        },
    )
    flower, _ = run_in_process(cfg, fed)
    engine = run_federation(cfg, fed)
    assert_same_run(flower, engine)
    assert all("h1" not in r["sites"] for r in flower.rounds)
    assert [r["cohorts"] for r in flower.rounds] == [r["cohorts"] for r in engine.rounds]
