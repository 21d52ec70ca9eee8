"""A site's image items, read from disk one at a time (an item source for the training loader).

Only file paths and labels are held; ``items[i]`` reads file ``i``, converts it to the
configured channels, resizes it to ``image_size`` (bilinear, trilinear for volumes;
antialiased when a 2-D image shrinks; masks by nearest neighbour so they stay label maps),
applies the intensity setting and, for training items, the seeded augmentations
(:mod:`medsilo.data.image_augment`). Item ``i`` is ``(x, y)``: ``x`` a float32 tensor
``(C, *image_size)``, ``y`` the class index (binary, multiclass), a float vector (multilabel
0/1 labels, regression values) or the int64 mask ``(1, *image_size)`` (segmentation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from medsilo.data.base import DataFormatError
from medsilo.data.image_augment import Augmenter
from medsilo.data.image_config import ImageSourceConfig
from medsilo.data.image_files import DicomReading, read_image, read_mask

FLAT_STD = 1e-5


@dataclass(frozen=True)
class ImageItem:
    """One checked file of a site: its path, and its label (a class index or a vector of
    labels or values) or its mask's path."""

    image: Path
    label: int | tuple[float, ...] = 0
    mask: Path | None = None


def dicom_reading(cfg: ImageSourceConfig) -> DicomReading:
    """How DICOM files are decoded for ``cfg`` (square side = the first axis of image_size)."""
    return DicomReading(image_size=cfg.image_size[0], window=cfg.dicom_window)


def resized(x: torch.Tensor, size: list[int], mask: bool = False) -> torch.Tensor:
    """``x`` (C, *spatial) resized to ``size``."""
    if list(x.shape[1:]) == size:
        return x
    batch = x[None].float()
    if mask:
        return F.interpolate(batch, size=size, mode="nearest-exact")[0].to(x.dtype)
    shrinking = len(size) == 2 and any(s > t for s, t in zip(x.shape[1:], size, strict=True))
    mode = "bilinear" if len(size) == 2 else "trilinear"
    out = F.interpolate(batch, size=size, mode=mode, align_corners=False, antialias=shrinking)
    return out[0]


class ImageItems:
    """Items of one site's split; ``augment`` only for training items."""

    def __init__(self, items: list[ImageItem], cfg: ImageSourceConfig, augment: bool) -> None:
        self.items = items
        self.cfg = cfg
        self.dicom = dicom_reading(cfg)
        self.augmenter = Augmenter(cfg.augment) if augment and cfg.augment else None

    def __len__(self) -> int:
        return len(self.items)

    def reseed(self, seed: int) -> None:
        """Seed the augmentations (called by the training loader in each worker)."""
        if self.augmenter is not None:
            self.augmenter.reseed(seed)

    def without_augmentation(self) -> ImageItems:
        """The same items as they are on disk (what evaluation on training rows reads)."""
        return ImageItems(self.items, self.cfg, augment=False)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        item = self.items[index]
        try:
            image = torch.from_numpy(read_image(item.image, self.cfg.channels, self.dicom))
        except (OSError, ValueError) as err:
            raise DataFormatError(
                f"{item.image}: can no longer be read ({err}); it was readable when the site "
                "was checked: was it changed during the run?"
            ) from None
        x = resized(image, self.cfg.image_size)
        if self.cfg.intensity == "standardize":  # a flat image (std ~ rounding) stays flat
            std = float(x.std())
            x = (x - x.mean()) / (std if std > FLAT_STD else 1.0)
        mask = None if item.mask is None else self._mask(item.mask)
        if self.augmenter is not None:
            x, mask = self.augmenter(x, mask)
        if mask is not None:
            return x.float(), mask
        if isinstance(item.label, tuple):
            return x.float(), torch.tensor(item.label, dtype=torch.float32)
        return x.float(), item.label

    def _mask(self, path: Path) -> torch.Tensor:
        values = read_mask(path)
        if isinstance(values, str):
            raise DataFormatError(f"{path}: {values} (it was usable when the site was checked)")
        return resized(
            torch.from_numpy(np.ascontiguousarray(values))[None], self.cfg.image_size, mask=True
        )
