"""Segmentation metrics in a run: sites send Dice/HD95 states, the coordinator merges them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from medsilo.data.base import ArrayData
from medsilo.metrics.segmentation import SegmentationSuite
from medsilo.metrics.segmentation_evaluation import segmentation_states
from medsilo.models.weights import get_weights
from medsilo.runtime.clinical import ClinicalMetrics
from medsilo.runtime.segmentation_metrics import SegmentationMetrics
from medsilo.runtime.site_report import SiteReport
from medsilo.training.site_samples import samples_of
from tests.conftest import small_config


class Threshold(nn.Module):
    """Labels a pixel as object where its intensity exceeds a learnable cut (two channels)."""

    def __init__(self, cut: float = 0.5, channels: int = 2) -> None:
        super().__init__()
        self.cut = nn.Parameter(torch.tensor([cut]))
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = x - self.cut
        return torch.cat([-score, score, *([score] * (self.channels - 2))], dim=1)


def images(seed: int, n: int = 6) -> ArrayData:
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, 1, 16, 16), dtype=np.int64)
    for i in range(n):
        r, c = rng.integers(2, 10, 2)
        masks[i, 0, r : r + 5, c : c + 4] = 1
    noise = rng.uniform(0, 0.6, masks.shape)  # some background pixels pass a 0.5 cut
    return ArrayData(np.maximum(masks * 0.8, noise).astype(np.float32), masks)


def site_states(data: ArrayData, cut: float) -> dict[str, dict[str, np.ndarray]]:
    model = Threshold(cut)
    return segmentation_states(
        model, get_weights(model), samples_of(data, "segmentation"), SegmentationSuite(), 2
    )


def test_the_task_picks_the_metrics() -> None:
    cfg = small_config()
    assert isinstance(ClinicalMetrics.of(cfg, "segmentation"), SegmentationMetrics)
    assert isinstance(ClinicalMetrics.of(cfg, "binary"), ClinicalMetrics)
    assert ClinicalMetrics.of(cfg, "regression") is None


def test_site_states_are_the_suite_on_the_models_label_maps() -> None:
    data = images(0)
    states = site_states(data, cut=0.7)
    predicted = (data.x > 0.7).astype(np.int64)
    assert SegmentationSuite().values(states) == pytest.approx(
        SegmentationSuite().values(SegmentationSuite().states(predicted, data.y, 2))
    )
    assert site_states(data, cut=0.7)["dice"]["sum"][0] == pytest.approx(6.0)  # all found
    assert SegmentationSuite().values(site_states(data, cut=0.4))["dice"] < 0.9  # noise in


def test_a_model_with_the_wrong_number_of_channels_is_refused() -> None:
    model = Threshold(channels=3)
    with pytest.raises(ValueError, match=r"gives 3 channels.*needs 2"):
        segmentation_states(
            model, get_weights(model), samples_of(images(0), "segmentation"), SegmentationSuite(), 2
        )


def test_round_metrics_pool_the_sites_and_survive_the_wire() -> None:
    sites = {"a": images(1), "b": images(2, n=9), "c": images(3, n=3)}
    cuts = {"a": 0.7, "b": 0.45, "c": 0.55}
    reports = {s: SiteReport(site_states(d, cuts[s]), {}, {}, final=True) for s, d in sites.items()}
    wired = {
        s: SiteReport.from_wire(json.loads(json.dumps(r.to_wire()))) for s, r in reports.items()
    }
    fields = SegmentationMetrics().fields(reports)
    assert SegmentationMetrics().fields(wired) == fields
    metrics = fields["metrics"]
    assert metrics["lead"] == "dice" and set(metrics["per_site"]) == set(sites)

    # pooled = the Dice of every site's label maps at once
    predicted = np.concatenate([(d.x > cuts[s]).astype(np.int64) for s, d in sites.items()])
    truth = np.concatenate([d.y for d in sites.values()])
    suite = SegmentationSuite()
    assert metrics["pooled"] == pytest.approx(suite.values(suite.states(predicted, truth, 2)))
    per_site_a = suite.values(suite.states((sites["a"].x > 0.7).astype(np.int64), sites["a"].y, 2))
    assert metrics["per_site"]["a"] == pytest.approx(per_site_a)
    others = suite.states(predicted[6:], truth[6:], 2)  # b and c
    assert metrics["without_site"]["a"] == pytest.approx(suite.values(others))
