"""Dice and HD95 states: they add up to the metric on all images, and agree with MONAI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.metrics.hausdorff_distance import compute_hausdorff_distance
from monai.metrics.meandice import DiceMetric

from medsilo.metrics.base import MetricInputError
from medsilo.metrics.segmentation import LabelMaps, SegmentationSuite


def blobs(n: int, classes: int, seed: int, size: int = 16) -> np.ndarray:
    """Label maps (n, 1, size, size) with a random box per foreground class."""
    rng = np.random.default_rng(seed)
    maps = np.zeros((n, 1, size, size), dtype=np.int64)
    for i in range(n):
        for c in range(1, classes):
            if rng.random() < 0.15:  # some images lack the class
                continue
            r, q = rng.integers(0, size - 4, 2)
            h, w = rng.integers(2, 6, 2)
            maps[i, 0, r : r + h, q : q + w] = c
    return maps


def noisy(maps: np.ndarray, classes: int, seed: int) -> np.ndarray:
    """A prediction: the truth with a fifth of its pixels relabelled at random."""
    rng = np.random.default_rng(seed)
    out = maps.copy()
    flip = rng.random(maps.shape) < 0.2
    out[flip] = rng.integers(0, classes, int(flip.sum()))
    return out


@pytest.mark.parametrize("classes", [2, 3])
def test_pooled_dice_from_merged_states_equals_dice_on_all_images(classes: int) -> None:
    truth = blobs(30, classes, seed=1)
    predicted = noisy(truth, classes, seed=2)
    suite = SegmentationSuite()
    parts = [slice(0, 7), slice(7, 19), slice(19, 30)]  # three sites of unequal size
    merged = suite.merge(suite.states(predicted[p], truth[p], classes) for p in parts)

    everything = LabelMaps.of(predicted, truth, classes)
    monai_dice = DiceMetric(include_background=False, reduction="mean_batch")
    monai_dice(everything.predicted, everything.truth)
    per_class = monai_dice.aggregate().numpy()  # mean over images with the class, per class

    values = suite.values(merged)
    assert values["dice"] == pytest.approx(float(per_class.mean()), abs=1e-6)
    if classes > 2:
        assert [values["dice_class_1"], values["dice_class_2"]] == pytest.approx(
            per_class.tolist(), abs=1e-6
        )
    assert values == pytest.approx(suite.values(suite.states(predicted, truth, classes)))


def test_hd95_matches_monai_and_a_hand_count() -> None:
    truth = np.zeros((2, 1, 12, 12), dtype=np.int64)
    predicted = np.zeros_like(truth)
    truth[:, 0, 2:6, 2:6] = 1
    predicted[0, 0, 4:8, 2:6] = 1  # image 0: the square moved two rows down
    predicted[1, 0, 2:6, 2:9] = 1  # image 1: three columns too wide
    maps = LabelMaps.of(predicted, truth, 2)
    direct = compute_hausdorff_distance(
        maps.predicted, maps.truth, include_background=False, percentile=95
    ).numpy()
    state = SegmentationSuite().states(predicted, truth, 2)["hd95"]
    assert state["count"].tolist() == [2.0]
    assert state["sum"][0] == pytest.approx(float(direct.sum()))
    assert direct[0, 0] == pytest.approx(2.0)  # every edge point of the shift is 2 away
    assert SegmentationSuite().values({"dice": state, "hd95": state})["hd95"] == pytest.approx(
        float(direct.mean())
    )


def test_empty_masks_follow_monai_and_are_left_out_of_the_mean() -> None:
    truth = np.zeros((4, 1, 8, 8), dtype=np.int64)
    predicted = np.zeros_like(truth)
    truth[0, 0, 2:5, 2:5] = 1
    predicted[0, 0, 2:5, 2:5] = 1  # a perfect image: Dice 1, HD95 0
    truth[1, 0, 2:5, 2:5] = 1  # a complete miss: Dice 0, HD95 undefined
    predicted[2, 0, 2:5, 2:5] = 1  # no object, one predicted: ignored (MONAI ignore_empty)
    # image 3: nothing in either: ignored by both
    states = SegmentationSuite().states(predicted, truth, 2)
    assert states["dice"]["count"].tolist() == [2.0]
    assert states["dice"]["sum"].tolist() == [1.0]
    assert states["hd95"]["count"].tolist() == [1.0]
    assert SegmentationSuite().values(states) == {"dice": 0.5, "hd95": 0.0}


def test_no_defined_image_gives_nan_not_zero() -> None:
    suite = SegmentationSuite()
    values = suite.values(suite.empty(2))
    assert np.isnan(values["dice"]) and np.isnan(values["hd95"])
    empty = np.zeros((0, 1, 8, 8), dtype=np.int64)
    assert suite.states(empty, empty, 2)["dice"]["count"].tolist() == [0.0]


def test_three_dimensional_maps_are_scored() -> None:
    truth = np.zeros((1, 1, 8, 8, 8), dtype=np.int64)
    truth[0, 0, 2:6, 2:6, 2:6] = 1
    predicted = np.roll(truth, 1, axis=2)
    values = SegmentationSuite().values(SegmentationSuite().states(predicted, truth, 2))
    assert values["dice"] == pytest.approx(0.75)  # 48 of 64 voxels overlap
    assert values["hd95"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("predicted", "truth", "message"),
    [
        (np.zeros((2, 1, 8, 8)), np.zeros((2, 1, 8, 7)), "must both be"),
        (np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), "must both be"),
        (np.zeros((2, 1, 8, 8)), np.full((2, 1, 8, 8), 2), "lie in 0..1"),
        (np.zeros((2, 1, 8, 8), dtype=np.float32), np.zeros((2, 1, 8, 8)), "integers"),
    ],
)
def test_bad_label_maps_are_refused_with_the_reason(
    predicted: np.ndarray, truth: np.ndarray, message: str
) -> None:
    if predicted.dtype != np.float32:
        predicted = predicted.astype(np.int64)
    with pytest.raises(MetricInputError, match=message):
        SegmentationSuite().states(predicted, truth.astype(np.int64), 2)


def test_label_maps_are_one_hot_per_class() -> None:
    maps = LabelMaps.of(np.array([[[[0, 2], [1, 1]]]]), np.array([[[[0, 2], [1, 1]]]]), 3)
    assert maps.predicted.shape == (1, 3, 2, 2)
    assert torch.equal(maps.predicted.sum(dim=1), torch.ones(1, 2, 2))
    assert maps.foreground_classes == 2
