"""Segmentation metrics as mergeable states: Dice and the 95% Hausdorff distance (MONAI).

A segmentation task is scored per image, not per patient row: for every image and every
foreground class, MONAI gives one value (:func:`monai.metrics.compute_dice`,
:func:`monai.metrics.compute_hausdorff_distance` with ``percentile=95``). A site reduces
those values to a state of two vectors over the foreground classes, ``sum`` (of the defined
per-image values) and ``count`` (of the images where the value is defined), so states add
up across batches and sites and the coordinator reads the mean over images per class as
``sum / count``: the pooled value equals the value over all images at once, exactly as
:mod:`medsilo.metrics.base` asks of every metric.

Undefined values follow MONAI and are left out of both sums (never counted as 0 or 1):

* Dice uses ``ignore_empty=True`` (MONAI's default): an image whose ground truth has no
  pixel of the class gives NaN, whether or not the model predicted some; an image with the
  class in the truth but not in the prediction gives 0.
* HD95 is NaN when the prediction or the truth lacks the class (no surface to measure from);
  a complete miss shows in Dice (0) instead. Distances are in pixels (voxels): the images
  carry no spacing.

A metric's value is the mean over foreground classes of the per-class means (NaN when no
image defines any class); with more than one foreground class, the per-class means are
reported too (``dice_class_1``, ...).
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from numpy.typing import NDArray

from medsilo.metrics.base import FloatArray, MetricInputError, MetricState, merge_states

#: What a site sends for one evaluation: metric name -> state.
SegmentationStates = dict[str, MetricState]


@dataclass(frozen=True)
class LabelMaps:
    """Checked inputs: predicted and true label maps ``(N, 1, *spatial)`` as one-hot
    ``(N, C, *spatial)`` tensors, C = classes including the background (class 0)."""

    predicted: torch.Tensor
    truth: torch.Tensor

    @property
    def foreground_classes(self) -> int:
        return int(self.truth.shape[1]) - 1

    @staticmethod
    def of(
        predicted: NDArray[np.integer], truth: NDArray[np.integer], num_classes: int
    ) -> LabelMaps:
        if num_classes < 2:
            raise MetricInputError(
                f"segmentation needs >= 2 classes (background included), got {num_classes}"
            )
        p, t = np.asarray(predicted), np.asarray(truth)
        if p.shape != t.shape or p.ndim < 4 or p.shape[1] != 1:
            raise MetricInputError(
                "predicted and true label maps must both be (N, 1, *spatial) with 2 or 3 "
                f"spatial dimensions; got {p.shape} and {t.shape}"
            )
        for what, maps in (("predicted", p), ("true", t)):
            if not np.issubdtype(maps.dtype, np.integer):
                raise MetricInputError(f"{what} label maps must be integers, got {maps.dtype}")
            if maps.size and (maps.min() < 0 or maps.max() >= num_classes):
                raise MetricInputError(f"{what} label maps must lie in 0..{num_classes - 1}")
        return LabelMaps(_one_hot(p, num_classes), _one_hot(t, num_classes))


def _one_hot(maps: NDArray[np.integer], num_classes: int) -> torch.Tensor:
    labels = torch.as_tensor(np.asarray(maps, dtype=np.int64))[:, 0]
    hot = torch.nn.functional.one_hot(labels, num_classes)  # (N, *spatial, C)
    return hot.movedim(-1, 1).float().contiguous()


class SegmentationMetric(ABC):
    """One per-image metric reduced to ``sum`` and ``count`` per foreground class."""

    name: ClassVar[str]
    higher_is_better: ClassVar[bool]

    @abstractmethod
    def per_image(self, maps: LabelMaps) -> FloatArray:
        """MONAI's value per image and foreground class, ``(N, C - 1)``; NaN where undefined."""

    def state(self, maps: LabelMaps) -> MetricState:
        if len(maps.truth) == 0:  # MONAI cannot stack an empty batch
            return self.empty_state(maps.foreground_classes + 1)
        values = self.per_image(maps)
        defined = np.isfinite(values)
        return {
            "sum": np.where(defined, values, 0.0).sum(axis=0),
            "count": defined.sum(axis=0).astype(np.float64),
        }

    def empty_state(self, num_classes: int) -> MetricState:
        """The state of no images (what a site with an empty test set sends)."""
        return {"sum": np.zeros(num_classes - 1), "count": np.zeros(num_classes - 1)}

    def per_class(self, state: MetricState) -> FloatArray:
        """Mean over images per foreground class (NaN for a class no image defines)."""
        count = state["count"]
        means: FloatArray = np.full(count.shape, np.nan)
        np.divide(state["sum"], count, out=means, where=count > 0)
        return means

    def value(self, state: MetricState) -> float:
        """Mean of :meth:`per_class` over the classes that have one."""
        means = self.per_class(state)
        return float(np.mean(means[np.isfinite(means)])) if np.isfinite(means).any() else np.nan


class Dice(SegmentationMetric):
    name = "dice"
    higher_is_better = True

    def per_image(self, maps: LabelMaps) -> FloatArray:
        from monai.metrics.meandice import compute_dice  # MONAI loads only for segmentation

        dice = compute_dice(maps.predicted, maps.truth, include_background=False)
        return np.asarray(dice.double().numpy(), dtype=np.float64)


class HausdorffDistance95(SegmentationMetric):
    name = "hd95"
    higher_is_better = False

    def per_image(self, maps: LabelMaps) -> FloatArray:
        from monai.metrics.hausdorff_distance import compute_hausdorff_distance

        with warnings.catch_warnings():  # "class is all 0": the NaN it warns of is left out
            warnings.simplefilter("ignore")
            distance = compute_hausdorff_distance(
                maps.predicted, maps.truth, include_background=False, percentile=95
            )
        return np.asarray(distance.double().numpy(), dtype=np.float64)


@dataclass(frozen=True)
class SegmentationSuite:
    """The segmentation metrics a run reports (Dice first: it leads the tables)."""

    metrics: tuple[SegmentationMetric, ...] = (Dice(), HausdorffDistance95())

    @property
    def lead(self) -> str:
        return self.metrics[0].name

    def states(
        self, predicted: NDArray[np.integer], truth: NDArray[np.integer], num_classes: int
    ) -> SegmentationStates:
        """Site side: every metric's state of a batch (or all) of a site's images."""
        maps = LabelMaps.of(predicted, truth, num_classes)
        return {m.name: m.state(maps) for m in self.metrics}

    def empty(self, num_classes: int) -> SegmentationStates:
        return {m.name: m.empty_state(num_classes) for m in self.metrics}

    def merge(self, state_sets: Iterable[SegmentationStates]) -> SegmentationStates:
        """The sum of several batches' or sites' states."""
        items = list(state_sets)
        if not items:
            raise ValueError("no states to merge")
        return {m.name: merge_states(s[m.name] for s in items) for m in self.metrics}

    def values(self, states: SegmentationStates) -> dict[str, float]:
        """Each metric's value, Dice first; per class too when there are several."""
        out = {m.name: m.value(states[m.name]) for m in self.metrics}
        for m in self.metrics:
            per_class = m.per_class(states[m.name])
            if len(per_class) > 1:
                out |= {f"{m.name}_class_{k + 1}": float(v) for k, v in enumerate(per_class)}
        return out
