"""Segmentation through the Flower apps: the same round records (Dice, HD95) as the engine."""

from __future__ import annotations

from medsilo.data.registry import build_federation
from medsilo.runtime.simulation import run_federation

from ..test_segmentation_run import segmentation_config
from .test_apps_inprocess import (  # the fixtures give Flower's messages their identity
    assert_same_run,
    one_thread,
    run_in_process,
    task_identity,
)

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
