"""An image-folder federation (``dataset: images``, streamed from disk, with seeded
augmentations) runs the same in the Flower apps as in the in-process engine."""

from __future__ import annotations

import shutil
from pathlib import Path

from medsilo.config import load_config
from medsilo.data.registry import build_federation
from medsilo.data.synthetic_sites import write_image_sites
from medsilo.runtime.simulation import run_federation

from .test_apps_inprocess import (  # noqa: F401  (task_identity, one_thread: fixtures)
    assert_same_run,
    one_thread,
    run_in_process,
    task_identity,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "bring-your-own" / "config.yaml"


def test_image_folders_train_alike_in_the_engine_and_the_flower_apps(tmp_path: Path) -> None:
    write_image_sites(tmp_path / "sites", per_site=12)
    shutil.copy(EXAMPLE, tmp_path / "config.yaml")
    cfg = load_config(tmp_path / "config.yaml")
    training = cfg.training.model_copy(update={"rounds": 2, "local_steps": 3})
    evaluation = cfg.evaluation.model_copy(update={"loho": False})
    cfg = cfg.model_copy(update={"training": training, "evaluation": evaluation})
    assert cfg.data.images is not None and cfg.data.images.augment  # augmented, seeded
    fed = build_federation(cfg.data, cfg.seed)
    engine = run_federation(cfg, fed)
    flower, _ = run_in_process(cfg, fed)
    assert_same_run(flower, engine)
