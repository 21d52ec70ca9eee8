"""Random augmentations of training items, drawn from one seeded generator (plain torch).

``reseed(seed)`` sets the generator: the training loader calls it in each of its workers
with a seed derived from the run seed (:class:`medsilo.training.streamed.StreamedData`), so a
run with a given seed and number of loader workers sees exactly the same augmented batches
again. A segmentation mask follows its image through every geometric step (nearest
neighbour, so it stays a label map); intensity steps touch the image only.

* ``flip``: mirror the last (left-right) axis with probability 1/2;
* ``{rotate: d}``: rotate by an angle drawn uniformly from ``[-d, d]`` degrees about the
  image centre (3-D: in the plane of the last two axes), borders filled with zeros;
* ``intensity``: ``x * a + b`` with ``a`` uniform in [0.9, 1.1] and ``b`` in [-0.1, 0.1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from medsilo.data.image_config import AugmentStep, RotateStep

INTENSITY_SCALE, INTENSITY_SHIFT = 0.1, 0.1


class Augmenter:
    """The ``augment`` steps of a config, applied in order to ``(C, *spatial)`` tensors."""

    def __init__(self, steps: list[AugmentStep], seed: int = 0) -> None:
        self.steps = list(steps)
        self.generator = torch.Generator().manual_seed(seed)

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def _uniform(self, low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=self.generator))

    def __call__(
        self, image: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        for step in self.steps:
            if isinstance(step, RotateStep):
                angle = math.radians(self._uniform(-step.rotate, step.rotate))
                image = _rotate(image, angle, "bilinear")
                mask = None if mask is None else _rotate(mask, angle, "nearest")
            elif step == "flip":
                if self._uniform(0.0, 1.0) < 0.5:
                    image = image.flip(-1)
                    mask = None if mask is None else mask.flip(-1)
            else:  # intensity
                scale = self._uniform(1 - INTENSITY_SCALE, 1 + INTENSITY_SCALE)
                image = image * scale + self._uniform(-INTENSITY_SHIFT, INTENSITY_SHIFT)
        return image, mask


def _rotate(x: torch.Tensor, angle: float, mode: str) -> torch.Tensor:
    """``x`` (C, *spatial) rotated by ``angle`` radians in the plane of its last two axes."""
    cos, sin = math.cos(angle), math.sin(angle)
    values = x.float()[None]
    if values.dim() == 4:  # (1, C, H, W)
        theta = torch.tensor([[[cos, -sin, 0.0], [sin, cos, 0.0]]])
    else:  # (1, C, D, H, W): grid coordinates are (x=W, y=H, z=D); z is kept
        theta = torch.tensor([[[cos, -sin, 0.0, 0.0], [sin, cos, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]])
    grid = F.affine_grid(theta, list(values.shape), align_corners=False)
    out = F.grid_sample(values, grid, mode=mode, padding_mode="zeros", align_corners=False)[0]
    return out.to(x.dtype)
