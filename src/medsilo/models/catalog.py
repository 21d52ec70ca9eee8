"""Every model ``model.name`` can name, and what config validation knows of it unbuilt.

The one list of model names: config validation, the builder and the docs' table read it.
``batch_norm`` is the static answer config validation gives FedBN (needs BatchNorm) and
DP-SGD (refuses it) before any model is built; the built model is checked again
(:func:`medsilo.runtime.factory.refuse_incompatible`), which is what decides for a user's
factory and for ``model.kwargs`` that change a network's ``norm``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from medsilo.models import monai_nets, zoo

Builder = Callable[[tuple[int, ...], int, Mapping[str, Any]], nn.Module]


@dataclass(frozen=True)
class NamedModel:
    build: Builder
    #: Whether the model as built by default has BatchNorm layers.
    batch_norm: bool
    #: One line for the docs and error messages.
    summary: str


NAMED_MODELS: dict[str, NamedModel] = {
    "logistic": NamedModel(zoo.logistic, False, "logistic (softmax) regression"),
    "mlp": NamedModel(zoo.mlp, False, "two hidden layers (kwargs: hidden, default 128)"),
    "cnn": NamedModel(zoo.cnn, False, "two conv blocks, square 2D images"),
    "cnn_bn": NamedModel(zoo.cnn_bn, True, "cnn with BatchNorm (what FedBN keeps local)"),
    "resnet18": NamedModel(monai_nets.resnet18, True, "MONAI ResNet-18, 2D/3D"),
    "resnet50": NamedModel(monai_nets.resnet50, True, "MONAI ResNet-50, 2D/3D"),
    "densenet121": NamedModel(monai_nets.densenet121, True, "MONAI DenseNet-121, 2D/3D"),
    "efficientnet_b0": NamedModel(monai_nets.efficientnet_b0, True, "MONAI EfficientNet-B0, 2D/3D"),
    "vit": NamedModel(monai_nets.vit, False, "MONAI ViT (ViT-Ti dimensions), 2D/3D"),
    "unet": NamedModel(
        monai_nets.unet, False, "MONAI UNet for segmentation (instance norm), 2D/3D"
    ),
    "segresnet": NamedModel(
        monai_nets.segresnet, False, "MONAI SegResNet for segmentation (group norm), 2D/3D"
    ),
}
MODEL_NAMES = tuple(NAMED_MODELS)
