"""MONAI networks by name, adapted to the data: 2D or 3D, input channels, outputs.

Every builder takes the input shape ``(C, H, W)`` or ``(C, D, H, W)``, the number of outputs
(:func:`medsilo.training.task.output_size`) and ``model.kwargs``, which override the
defaults below (not what comes from the data: spatial dims, channels, outputs, image size).
MONAI is imported only when one of these is built (it takes seconds), and always with
``pretrained=False``: weights come from a local file only (:mod:`medsilo.models.local_weights`).

Small inputs: below ``SMALL_INPUT`` pixels a side, ImageNet's stem (7x7 stride-2 conv and a
3x3 stride-2 max-pool: 4x downsampling before the first block) would leave a 28x28 MedMNIST
image 1x1 by the last stage. There, ``resnet18``/``resnet50`` use a 3x3 stride-1 first
conv and no max-pool (as the MedMNIST v2 paper's ResNet-18 (28) does), and ``densenet121``
likewise a 3x3 stride-1 ``conv0`` and no ``pool0``. ``efficientnet_b0`` computes its "same"
padding for the data's image size instead of MONAI's fixed 224.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

#: Below this many pixels a side, resnets and densenet get a stride-1 3x3 stem, no max-pool.
SMALL_INPUT = 64
#: ViT patch sizes tried, largest first; the first that divides every side into at least
#: ``MIN_PATCHES_PER_SIDE`` patches is used (28x28 -> 4, 224x224 -> 16).
VIT_PATCH_SIZES = (16, 8, 4, 2, 1)
MIN_PATCHES_PER_SIDE = 4
#: ViT-Ti/16 (DeiT-Tiny) dimensions: small enough for CPU federations.
VIT_DEFAULTS: dict[str, Any] = {
    "hidden_size": 192,
    "mlp_dim": 768,
    "num_layers": 12,
    "num_heads": 3,
}
#: The stages of EfficientNet-B0 (Tan & Le 2019, table 1) in MONAI's block notation; MONAI
#: keeps them inside ``EfficientNetBN.__init__``, which fixes the image size at 224.
EFFICIENTNET_B0_BLOCKS = [
    "r1_k3_s11_e1_i32_o16_se0.25",
    "r2_k3_s22_e6_i16_o24_se0.25",
    "r2_k5_s22_e6_i24_o40_se0.25",
    "r3_k3_s22_e6_i40_o80_se0.25",
    "r3_k5_s11_e6_i80_o112_se0.25",
    "r4_k5_s22_e6_i112_o192_se0.25",
    "r1_k3_s11_e6_i192_o320_se0.25",
]
#: UNet: at most this many stride-2 levels (MONAI's tutorials' 16-32-64-128-256 channels)...
UNET_MAX_LEVELS = 4
#: ...fewer where a side would otherwise end below this many pixels at the bottom.
UNET_MIN_BOTTOM = 2


def image_shape(name: str, input_shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """``(channels, spatial sizes)`` of ``input_shape``; 2D or 3D images only."""
    if len(input_shape) not in (3, 4):
        raise ValueError(
            f"model {name!r} needs image inputs (C, H, W) or (C, D, H, W); got {input_shape}"
        )
    return input_shape[0], input_shape[1:]


def construct(
    name: str,
    constructor: Callable[..., nn.Module],
    defaults: Mapping[str, Any],
    kwargs: Mapping[str, Any],
    derived: Mapping[str, Any],
) -> nn.Module:
    """``constructor(**defaults | kwargs | derived)``; ``kwargs`` may not set what the data
    decides (``derived``), and a constructor's refusal becomes a message naming the model."""
    taken = sorted(k for k in kwargs if k in derived and k != "pretrained")
    if taken:
        raise ValueError(
            f"model {name!r}: model.kwargs sets {', '.join(taken)}, which medsilo derives "
            f"from the data ({', '.join(f'{k}={derived[k]!r}' for k in taken)}); remove it"
        )
    try:
        return constructor(**{**defaults, **kwargs, **derived})
    except (TypeError, ValueError, AssertionError) as err:
        raise ValueError(
            f"model {name!r} cannot be built with model.kwargs {dict(kwargs)}: {err}"
        ) from None


def _stem(spatial: tuple[int, ...]) -> dict[str, Any]:
    if min(spatial) < SMALL_INPUT:
        return {"conv1_t_size": 3, "conv1_t_stride": 1, "no_max_pool": True}
    return {"conv1_t_size": 7, "conv1_t_stride": 2, "no_max_pool": False}


def _resnet(
    name: str, input_shape: tuple[int, ...], outputs: int, kwargs: Mapping[str, Any]
) -> nn.Module:
    from monai.networks.nets import resnet

    channels, spatial = image_shape(name, input_shape)
    derived = {
        "spatial_dims": len(spatial),
        "n_input_channels": channels,
        "num_classes": outputs,
        "pretrained": False,
    }
    return construct(name, getattr(resnet, name), _stem(spatial), kwargs, derived)


def resnet18(input_shape: tuple[int, ...], outputs: int, kwargs: Mapping[str, Any]) -> nn.Module:
    return _resnet("resnet18", input_shape, outputs, kwargs)


def resnet50(input_shape: tuple[int, ...], outputs: int, kwargs: Mapping[str, Any]) -> nn.Module:
    return _resnet("resnet50", input_shape, outputs, kwargs)


def densenet121(input_shape: tuple[int, ...], outputs: int, kwargs: Mapping[str, Any]) -> nn.Module:
    from monai.networks.layers.factories import Conv
    from monai.networks.nets.densenet import DenseNet121

    channels, spatial = image_shape("densenet121", input_shape)
    derived = {
        "spatial_dims": len(spatial),
        "in_channels": channels,
        "out_channels": outputs,
        "pretrained": False,
    }
    net = construct("densenet121", DenseNet121, {}, kwargs, derived)
    if min(spatial) < SMALL_INPUT:
        features = net.get_submodule("features")
        first = features.get_submodule("conv0")
        assert isinstance(first, nn.Conv2d | nn.Conv3d)
        conv = Conv[Conv.CONV, len(spatial)](
            channels, first.out_channels, kernel_size=3, stride=1, padding=1, bias=False
        )
        nn.init.kaiming_normal_(conv.weight)  # as MONAI initialises DenseNet's convs
        features.conv0 = conv
        features.pool0 = nn.Identity()
    return net


def efficientnet_b0(
    input_shape: tuple[int, ...], outputs: int, kwargs: Mapping[str, Any]
) -> nn.Module:
    from monai.networks.nets.efficientnet import EfficientNet, efficientnet_params

    channels, spatial = image_shape("efficientnet_b0", input_shape)
    width, depth, _size, dropout, drop_connect = efficientnet_params["efficientnet-b0"]
    defaults = {
        "width_coefficient": width,
        "depth_coefficient": depth,
        "dropout_rate": dropout,
        "drop_connect_rate": drop_connect,
    }
    derived = {
        "blocks_args_str": EFFICIENTNET_B0_BLOCKS,
        "spatial_dims": len(spatial),
        "in_channels": channels,
        "num_classes": outputs,
        "image_size": max(spatial),
    }
    return construct("efficientnet_b0", EfficientNet, defaults, kwargs, derived)


def vit_patch_size(spatial: tuple[int, ...]) -> int:
    """The largest of :data:`VIT_PATCH_SIZES` that cuts every side into at least
    :data:`MIN_PATCHES_PER_SIDE` whole patches (1 for tiny images)."""
    for size in VIT_PATCH_SIZES:
        if all(side % size == 0 and side // size >= MIN_PATCHES_PER_SIDE for side in spatial):
            return size
    return 1


def vit(input_shape: tuple[int, ...], outputs: int, kwargs: Mapping[str, Any]) -> nn.Module:
    from medsilo.models.vit import ViTClassifier

    channels, spatial = image_shape("vit", input_shape)
    patch = kwargs.get("patch_size", vit_patch_size(spatial))
    patches = [patch] * len(spatial) if isinstance(patch, int) else list(patch)
    if len(patches) != len(spatial) or any(s % p for s, p in zip(spatial, patches, strict=True)):
        raise ValueError(
            f"model 'vit': patch_size {patch} does not divide the image {spatial} into whole "
            f"patches; leave model.kwargs.patch_size out (default for this image: "
            f"{vit_patch_size(spatial)}) or choose a divisor of every side"
        )
    derived = {
        "in_channels": channels,
        "img_size": spatial,
        "spatial_dims": len(spatial),
        "classification": True,
        "num_classes": outputs,
        "post_activation": None,  # raw logits: medsilo's losses apply sigmoid/softmax
    }
    defaults = {**VIT_DEFAULTS, "patch_size": patch}
    return construct("vit", ViTClassifier, defaults, kwargs, derived)


def unet_levels(spatial: tuple[int, ...]) -> int:
    """How many stride-2 levels the default UNet has for an image: as many as fit, up to
    :data:`UNET_MAX_LEVELS`, each side a multiple of ``2**levels`` and at least
    :data:`UNET_MIN_BOTTOM` pixels at the bottom (a 16-voxel cube gets 3: instance norm
    needs more than one voxel)."""
    for levels in range(UNET_MAX_LEVELS, 0, -1):
        factor = 2**levels
        if all(side % factor == 0 and side // factor >= UNET_MIN_BOTTOM for side in spatial):
            return levels
    raise ValueError(
        f"model 'unet' halves the image at least once: every side of {spatial} must be even "
        f"and at least {2 * UNET_MIN_BOTTOM}"
    )


def unet(input_shape: tuple[int, ...], outputs: int, kwargs: Mapping[str, Any]) -> nn.Module:
    from monai.networks.nets.unet import UNet

    channels, spatial = image_shape("unet", input_shape)
    if "strides" in kwargs:
        strides = kwargs["strides"]
        factor = math.prod(s if isinstance(s, int) else max(s) for s in strides)
        if any(side % factor for side in spatial):
            raise ValueError(
                f"model 'unet' with strides {tuple(strides)} downsamples {factor}x: every "
                f"side of {spatial} must be a multiple of {factor}"
            )
        defaults: dict[str, Any] = {"num_res_units": 2}
    else:
        levels = unet_levels(spatial)
        defaults = {
            "channels": tuple(16 * 2**i for i in range(levels + 1)),
            "strides": (2,) * levels,
            "num_res_units": 2,
        }
    derived = {"spatial_dims": len(spatial), "in_channels": channels, "out_channels": outputs}
    return construct("unet", UNet, defaults, kwargs, derived)


def segresnet(input_shape: tuple[int, ...], outputs: int, kwargs: Mapping[str, Any]) -> nn.Module:
    from monai.networks.nets.segresnet import SegResNet

    channels, spatial = image_shape("segresnet", input_shape)
    derived = {"spatial_dims": len(spatial), "in_channels": channels, "out_channels": outputs}
    return construct("segresnet", SegResNet, {}, kwargs, derived)
