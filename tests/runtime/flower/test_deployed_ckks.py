"""CKKS with a key-holding site through the deployed ServerApp and ClientApp (enrolment,
site-held data), in-process over the push/pull fake Grid of ``test_deployed_apps.py``: the
final model is the engine's within CKKS precision, and nothing the coordinator receives
holds the key holder's secret key."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from flwr.app import Message

from medsilo.config import parse_config
from medsilo.runtime.simulation import run_federation

from .test_apps_inprocess import one_thread, task_identity  # noqa: F401  (autouse fixtures)
from .test_ckks_flower import BOUND, assert_no_secret_received, max_diff
from .test_deployed_apps import Federation, PushPullGrid, experiment, final_weights, rounds


class Recording(PushPullGrid):
    """Keeps every reply the coordinator pulls."""

    replies: list[Message]

    def pull_messages(self, message_ids: Iterable[str]) -> list[Message]:
        got = super().pull_messages(message_ids)
        self.replies = getattr(self, "replies", []) + got
        return got


def test_deployed_ckks_with_a_key_holder_site(tmp_path: Path) -> None:
    ckks = {"enabled": True, "mechanism": "ckks", "key_holder": "va"}
    fed = Federation(tmp_path, experiment(rounds=2) | {"secure_aggregation": ckks})
    base = fed.grid()
    grid = Recording({n: c.node_config for n, c in base.contexts.items()})
    run_dir = fed.run(grid)
    engine = run_federation(parse_config(fed.exp))
    plain_exp = {k: v for k, v in fed.exp.items() if k != "secure_aggregation"}
    plain = run_federation(parse_config(plain_exp))
    assert max_diff(final_weights(run_dir), engine.weights) < BOUND
    assert max_diff(final_weights(run_dir), plain.weights) < BOUND
    records = rounds(run_dir)
    assert [r["round"] for r in records] == [1, 2]
    for r in records:
        assert r["secure_aggregation"]["mechanism"] == "ckks"
        assert sorted(r["secure_aggregation"]["survivors"]) == sorted(r["sites"])
    holder = next(n for n, c in grid.contexts.items() if c.node_config["site"] == "va")
    assert_no_secret_received(grid.contexts[holder].state, grid.replies)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] is True
    assert np.isfinite(records[-1]["test"]["accuracy"])
