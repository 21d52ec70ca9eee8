"""Seeded augmentations of training items: a run's batches follow from its seed (and number of
loader workers), test items are never augmented, and a mask follows its image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medsilo.data.base import StreamedSplit
from medsilo.data.image_augment import Augmenter
from medsilo.data.image_config import RotateStep
from medsilo.data.image_site import build_image_federation
from medsilo.training.samples import BatchSampler
from medsilo.training.streamed import StreamedData

from .image_fixtures import gray_site, image_section

AUGMENT = ["flip", {"rotate": 30}, "intensity"]


def _train(tmp_path: Path, augment: list[object]) -> tuple[StreamedSplit, StreamedSplit]:
    cfg = image_section(
        {"a": gray_site(tmp_path / "a", n=12)}, tmp_path, augment=augment, image_size=[10, 10]
    )
    site = build_image_federation(cfg).sites[0]
    assert isinstance(site.train, StreamedSplit) and isinstance(site.test, StreamedSplit)
    return site.train, site.test


def _batches(split: StreamedSplit, seed: int, workers: int) -> list[torch.Tensor]:
    data = StreamedData(split, "binary", workers)
    sampler = BatchSampler(len(split), 4, torch.Generator().manual_seed(seed))
    return [x for x, _ in data.training_batches(sampler, 3)]


@pytest.mark.parametrize("workers", [0, 2])
def test_same_seed_same_batches_other_seed_other_batches(tmp_path: Path, workers: int) -> None:
    train, _ = _train(tmp_path, AUGMENT)
    first, again = _batches(train, 7, workers), _batches(train, 7, workers)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    other = _batches(train, 8, workers)
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_augmentations_change_training_items_only(tmp_path: Path) -> None:
    train, test = _train(tmp_path, AUGMENT)
    plain_train, plain_test = _train(tmp_path / "plain", [])
    train.items.reseed(3)  # type: ignore[attr-defined]
    x_aug, y_aug = train.items[0]
    x_plain, y_plain = plain_train.items[0]
    assert y_aug == y_plain and not torch.equal(x_aug, x_plain)
    assert torch.equal(test.items[0][0], plain_test.items[0][0])
    assert torch.equal(test.items[0][0], test.items[0][0])


def _centre(x: torch.Tensor) -> torch.Tensor:
    grid = torch.stack(torch.meshgrid(torch.arange(9.0), torch.arange(9.0), indexing="ij"))
    weights = x[0].float()
    return (grid * weights).sum(dim=(1, 2)) / weights.sum()


def test_a_mask_follows_its_image_through_flip_and_rotation() -> None:
    image = torch.zeros(1, 9, 9)
    image[0, 1:5, 1:3] = 1.0
    mask = (image > 0).long()
    moved = 0
    for steps in (["flip"], [RotateStep(rotate=90)]):
        augment = Augmenter(steps, seed=0)  # type: ignore[arg-type]
        for seed in range(6):
            augment.reseed(seed)
            x, m = augment(image, mask)
            assert m is not None and m.dtype == torch.long and set(m.unique().tolist()) <= {0, 1}
            assert torch.dist(_centre(m), _centre(x)) < 0.5, (steps, seed)
            moved += int(not torch.equal(m, mask))
    assert moved >= 6


def test_rotation_of_a_volume_keeps_its_shape_and_first_axis() -> None:
    volume = torch.zeros(1, 3, 8, 8)
    volume[0, 1, 2:6, 3:5] = 1.0
    x, _ = Augmenter([RotateStep(rotate=90)], seed=1)(volume)
    assert x.shape == volume.shape
    assert float(x[0, 0].abs().sum()) == 0.0 and float(x[0, 1].sum()) > 0
    np.testing.assert_allclose(float(x.sum()), float(volume.sum()), rtol=0.3)
