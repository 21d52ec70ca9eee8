"""FedBuff through the deployed ServerApp and ClientApp (enrolment, site-held data, pooled
metrics from site reports), in-process over the push/pull fake Grid of
``test_deployed_apps.py``, which answers every in-flight message at the next pull: the
deployed run takes the engine's asynchronous steps and ends with the engine's model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medsilo.config import ConfigError, parse_config
from medsilo.runtime.simulation import run_federation

from .test_apps_inprocess import one_thread, task_identity  # noqa: F401  (autouse fixtures)
from .test_deployed_apps import Federation, experiment, final_weights, rounds


@pytest.mark.parametrize("buffer_size", [3, 2], ids=["k-equals-sites", "stale-updates"])
def test_deployed_fedbuff_gives_the_engines_model(tmp_path: Path, buffer_size: int) -> None:
    exp = experiment(rounds=2) | {"asynchrony": {"mode": "fedbuff", "buffer_size": buffer_size}}
    fed = Federation(tmp_path, exp)
    grid = fed.grid()
    run_dir = fed.run(grid)
    engine = run_federation(parse_config(fed.exp))
    for a, b in zip(final_weights(run_dir), engine.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    records = rounds(run_dir)
    assert len(records) == len(engine.rounds) == 6 // buffer_size
    for mine, theirs in zip(records, engine.rounds, strict=True):
        for key in ("round", "sites", "staleness", "model_version", "updates_received"):
            assert mine[key] == theirs[key], key
        assert mine["global_model_sha256"] == theirs["global_model_sha256"]
        assert mine["sim_clock_s"] == pytest.approx(theirs["sim_clock_s"])
    assert records[-1]["stop_reason"] == "updates"
    # no pooled test set at the coordinator: the sites' reports, weighted
    assert records[-1]["test"]["accuracy"] == pytest.approx(
        engine.rounds[-1]["test"]["accuracy"], abs=1e-12
    )
    assert sum(count for (_, kind), count in grid.received.items() if kind == "train") == 6
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] is True and summary["rounds_completed"] == len(records)


def test_an_asynchronous_run_cannot_be_resumed(tmp_path: Path) -> None:
    exp = experiment(rounds=2) | {"asynchrony": {"mode": "fedbuff", "buffer_size": 3}}
    fed = Federation(tmp_path, exp)
    with pytest.raises(ConfigError, match="an asynchronous run cannot be resumed"):
        fed.run(fed.grid(), resume=True)
