"""Segmentation through Flower: the same round records (Dice, HD95) as the engine, with the
apps driven in-process (fast) and once through the Ray simulation runtime (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from medsilo.data.registry import build_federation
from medsilo.runtime.flower import run_flower_simulation
from medsilo.runtime.simulation import run_federation

from ...markers import FEDERATION_PROCESSES
from ..test_segmentation_run import segmentation_config
from .test_apps_inprocess import (  # the fixtures give Flower's messages their identity
    assert_same_run,
    one_thread,
    run_in_process,
    task_identity,
)
from .test_flower_simulation import assert_records_match

__all__ = ["one_thread", "task_identity"]


def test_flower_apps_give_the_engines_segmentation_records() -> None:
    cfg = segmentation_config(rounds=2, local_steps=3)
    fed = build_federation(cfg.data, cfg.seed)
    flower, _ = run_in_process(cfg, fed)
    engine = run_federation(cfg, fed)
    assert_same_run(flower, engine)
    metrics = flower.rounds[-1]["metrics"]
    assert set(metrics["per_site"]) == {s.name for s in fed.sites}
    assert metrics["pooled"]["dice"] is not None and metrics["pooled"]["hd95"] is not None


@pytest.mark.slow
@FEDERATION_PROCESSES
def test_the_ray_simulation_gives_the_engines_segmentation_records() -> None:
    cfg = segmentation_config(rounds=1, local_steps=3)
    fed = build_federation(cfg.data, cfg.seed)
    flower = run_flower_simulation(cfg, fed)
    engine = run_federation(cfg, fed)
    for a, b in zip(flower.weights, engine.weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert_records_match(flower.rounds, engine.rounds)
    assert flower.rounds[-1]["metrics"]["lead"] == "dice"
