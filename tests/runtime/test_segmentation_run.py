"""A short segmentation federation: three synthetic hospitals, a small MONAI UNet, FedAvg."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from medsilo.config import RunConfig, load_config
from medsilo.data.registry import build_federation
from medsilo.experiment import leave_one_hospital_out
from medsilo.metrics.segmentation import SegmentationSuite
from medsilo.metrics.segmentation_evaluation import segmentation_states
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.simulation import FederationResult, run_federation
from tests.conftest import small_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples/segmentation/config.yaml"
HOSPITALS = ["hospital_a", "hospital_b", "hospital_c"]
SMALL_UNET = {"channels": [8, 16, 32], "strides": [2, 2], "num_res_units": 1}


def segmentation_config(**training: Any) -> RunConfig:
    return small_config(
        data={"dataset": "synthetic_segmentation", "partition": "natural"},
        model={"name": "unet", "kwargs": SMALL_UNET},
        training={"rounds": 4, "local_steps": 8, "batch_size": 16, "lr": 0.01}
        | {"optimizer": "adam"}
        | training,
        evaluation={"every": 4},
    )


@pytest.fixture(scope="module")
def run() -> tuple[RunConfig, FederationResult]:
    torch.set_num_threads(1)
    cfg = segmentation_config()
    return cfg, run_federation(cfg)


def test_the_federated_unet_segments_held_out_images(
    run: tuple[RunConfig, FederationResult],
) -> None:
    _, result = run
    last = result.rounds[-1]
    assert last.metrics is not None and last.metrics["lead"] == "dice"
    assert set(last.metrics["per_site"]) == set(HOSPITALS)
    assert last.metrics["pooled"]["dice"] > 0.8  # held-out images; 0.94 measured
    assert 0 < last.metrics["pooled"]["hd95"] < 10
    assert all(site["dice"] > 0.7 for site in last.metrics["per_site"].values())
    assert last.test is not None and last.test.accuracy > 0.9  # mean pixel accuracy


def test_the_records_pooled_dice_is_the_dice_of_all_test_images_at_once(
    run: tuple[RunConfig, FederationResult],
) -> None:
    cfg, result = run
    prep = PreparedFederation.build(cfg)
    suite = SegmentationSuite()
    everything = segmentation_states(prep.model, result.weights, prep.pooled_test, suite, 2)
    metrics = result.rounds[-1].metrics
    assert metrics is not None
    assert metrics["pooled"] == pytest.approx(suite.values(everything), rel=1e-9)


def test_the_example_config_builds_a_unet_with_a_channel_per_class() -> None:
    cfg = load_config(EXAMPLE)
    prep = PreparedFederation.build(cfg)
    assert prep.fed.task == "segmentation" and prep.fed.site_names == HOSPITALS
    with torch.no_grad():
        out = prep.model(torch.zeros(2, 1, 64, 64))
    assert out.shape == (2, 2, 64, 64)


def test_leave_one_hospital_out_scores_each_unseen_hospital_with_dice() -> None:
    cfg = segmentation_config(rounds=1, local_steps=2)
    fed = build_federation(cfg.data, cfg.seed)
    out = leave_one_hospital_out(cfg, fed)
    assert list(out) == HOSPITALS
    for site in HOSPITALS:
        assert set(out[site]["clinical"]) == {"dice", "hd95"}
        assert out[site]["n"] == len(fed.site(site).train) + len(fed.site(site).test)


@pytest.mark.parametrize("baseline", ["pooled", "local"])
def test_baselines_report_dice_per_site(baseline: str) -> None:
    cfg = segmentation_config(rounds=1, local_steps=2).model_copy(
        update={"algorithm": small_config(algorithm={"name": baseline}).algorithm}
    )
    metrics = run_federation(cfg).rounds[-1].metrics
    assert metrics is not None and set(metrics["per_site"]) == set(HOSPITALS)
    assert metrics["pooled"]["dice"] is not None
