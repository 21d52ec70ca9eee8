"""Three hospitals of synthetic segmentation images, made by MONAI's generators.

``synthetic_segmentation`` (2D, 64x64) and ``synthetic_segmentation_3d`` (32x32x32) are
built in memory from the run seed, nothing is downloaded or written: every image is
:func:`monai.data.synthetic.create_test_image_2d` (or ``_3d``): bright discs (balls) on a
dark background with uniform noise, and the mask marks every disc (one foreground class, so
``num_classes`` is 2 with the background).

The sites are non-IID the way scanners and patient mixes differ: each has its own number
and size of objects and its own noise level, and its own number of images
(:data:`SITE_PROFILES`). Each site holds its own training and test images; the pooled test
set is their union.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np

from medsilo.data._util import frozen
from medsilo.data.base import ArrayData, CentralData, FederatedData, SiteData, in_memory

#: Dataset name -> spatial dimensions of its images.
SEGMENTATION_DATASETS: dict[str, Literal[2, 3]] = {
    "synthetic_segmentation": 2,
    "synthetic_segmentation_3d": 3,
}
SEGMENTATION_CLASSES = 2  # background and object
SIZE_2D = 64
SIZE_3D = 32
_SEED_TAG = 0x5E6


@dataclass(frozen=True)
class SiteProfile:
    """How one hospital's images look, and how many it has."""

    name: str
    train: int
    test: int
    objects: int
    #: Radii in pixels for 2D; a 3D volume halves them (its side is half as long).
    radius_min: int
    radius_max: int
    #: Noise drawn uniformly from ``[0, noise)``; objects have intensities 0.5-1.
    noise: float


SITE_PROFILES: tuple[SiteProfile, ...] = (
    SiteProfile("hospital_a", train=100, test=30, objects=8, radius_min=3, radius_max=8, noise=0.2),
    SiteProfile("hospital_b", train=70, test=30, objects=3, radius_min=8, radius_max=18, noise=0.5),
    SiteProfile("hospital_c", train=50, test=30, objects=5, radius_min=5, radius_max=12, noise=0.8),
)
#: Volumes are slower to make and to train on: a fifth as many per site.
VOLUME_SHARE = 5


def _site_images(
    profile: SiteProfile, count: int, dims: Literal[2, 3], rng: np.random.RandomState
) -> ArrayData:
    from monai.data.synthetic import (  # MONAI loads only for this dataset
        create_test_image_2d,
        create_test_image_3d,
    )

    images, masks = [], []
    for _ in range(count):
        if dims == 2:
            image, mask = create_test_image_2d(
                SIZE_2D,
                SIZE_2D,
                num_objs=profile.objects,
                rad_max=profile.radius_max,
                rad_min=profile.radius_min,
                noise_max=profile.noise,
                num_seg_classes=1,
                channel_dim=0,
                random_state=rng,
            )
        else:
            image, mask = create_test_image_3d(
                SIZE_3D,
                SIZE_3D,
                SIZE_3D,
                num_objs=profile.objects,
                rad_max=max(profile.radius_max // 2, 3),
                rad_min=max(profile.radius_min // 2, 1),
                noise_max=profile.noise,
                num_seg_classes=1,
                channel_dim=0,
                random_state=rng,
            )
        images.append(image)
        masks.append(mask)
    return frozen(np.stack(images), np.stack(masks))


@functools.cache
def load_synthetic_segmentation(seed: int, dims: Literal[2, 3] = 2) -> FederatedData:
    """The three hospitals of ``SITE_PROFILES``; the same seed gives the same images (kept
    once made: the arrays are read-only)."""
    sites, tests = [], []
    for index, profile in enumerate(SITE_PROFILES):
        # MONAI draws from a legacy RandomState: seed one per site from the run seed.
        state = np.random.default_rng([seed, _SEED_TAG, index, dims]).integers(2**32)
        rng = np.random.RandomState(int(state))
        share = 1 if dims == 2 else VOLUME_SHARE
        train = _site_images(profile, profile.train // share, dims, rng)
        test = _site_images(profile, profile.test // share, dims, rng)
        sites.append(SiteData(profile.name, train, test))
        tests.append(test)
    name = next(n for n, d in SEGMENTATION_DATASETS.items() if d == dims)
    return FederatedData(name, sites, ArrayData.concat(tests), SEGMENTATION_CLASSES, "segmentation")


def load_synthetic_segmentation_central(name: str) -> CentralData:
    """The three hospitals pooled, at seed 0 (what ``medsilo datasets`` lists)."""
    fed = load_synthetic_segmentation(0, SEGMENTATION_DATASETS[name])
    train = ArrayData.concat([in_memory(s.train, name) for s in fed.sites])
    test = in_memory(fed.test, name)
    return CentralData(name, train, test, fed.num_classes, fed.task)
