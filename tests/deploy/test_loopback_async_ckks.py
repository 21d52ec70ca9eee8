"""FedBuff and CKKS (with a key-holding site) in a deployed federation on 127.0.0.1: real
SuperLink, SuperNodes, TLS and node keys, ``medsilo coordinator start`` and three
``medsilo site start`` processes on heart disease.

Real replies trickle in, so the FedBuff run's order (and model) is the network's; these
tests check that it completes with well-formed records. That the same arrival order gives the
engine's model is checked in-process (``tests/runtime/flower/test_deployed_async.py``), as is
what the coordinator receives under CKKS (``tests/runtime/flower/test_deployed_ckks.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medsilo.config import parse_config
from medsilo.deploy.loopback import Loopback, heart_experiment
from medsilo.ledger.keys import load_public_key
from medsilo.ledger.verify import verify_ledger
from medsilo.runtime.simulation import run_federation

from ..markers import FEDERATION_PROCESSES
from .test_loopback import loopback_factory  # noqa: F401  (the fixture: stops every process)

pytestmark = [pytest.mark.slow, FEDERATION_PROCESSES]


def _run(made: list[Loopback], root: Path, experiment: dict[str, object]) -> Path:
    lb = Loopback(root, experiment)
    made.append(lb)
    coordinator = lb.start_coordinator()
    for site in lb.sites:
        lb.start_site(site)
    assert lb.wait(coordinator, 400) == 0, lb.all_logs()
    run = root / "run"
    assert verify_ledger(run / "ledger.sqlite", load_public_key(run / "ledger.pub")).ok
    return run


def _final_weights(run_dir: Path) -> list[np.ndarray]:
    with np.load(run_dir / "final_weights.npz") as npz:
        return [npz[f"arr_{i}"] for i in range(len(npz.files))]


def _records(run_dir: Path) -> list[dict[str, object]]:
    lines = (run_dir / "rounds.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_fedbuff_completes_over_a_loopback_deployment(
    tmp_path: Path,
    loopback_factory: list[Loopback],  # noqa: F811  (the fixture imported above)
) -> None:
    exp = heart_experiment(2) | {"asynchrony": {"mode": "fedbuff", "buffer_size": 2}}
    run = _run(loopback_factory, tmp_path, exp)
    records = _records(run)  # 2 rounds x 3 sites = 6 updates, 2 a buffer: 3 aggregations
    assert [r["round"] for r in records] == [1, 2, 3]
    assert [r["model_version"] for r in records] == [1, 2, 3]
    assert all(r["mode"] == "fedbuff" and len(r["staleness"]) == 2 for r in records)
    assert [r["updates_received"] for r in records] == [2, 4, 6]
    assert records[-1]["stop_reason"] == "updates" and "test" in records[-1]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] is True and summary["rounds_completed"] == 3


def test_ckks_with_a_key_holder_site_over_a_loopback_deployment(
    tmp_path: Path,
    loopback_factory: list[Loopback],  # noqa: F811  (the fixture imported above)
) -> None:
    ckks = {"enabled": True, "mechanism": "ckks", "key_holder": "va"}
    exp = heart_experiment(2) | {"secure_aggregation": ckks}
    run = _run(loopback_factory, tmp_path, exp)
    plain = run_federation(
        parse_config({k: v for k, v in exp.items() if k != "secure_aggregation"})
    )
    deployed = _final_weights(run)
    assert (
        max(float(np.abs(a - b).max()) for a, b in zip(deployed, plain.weights, strict=True)) < 1e-6
    )
    records = _records(run)
    assert [r["round"] for r in records] == [1, 2]
    for r in records:
        info = r["secure_aggregation"]
        assert isinstance(info, dict) and info["mechanism"] == "ckks"
        assert sorted(info["survivors"]) == sorted(r["sites"])  # type: ignore[arg-type]
