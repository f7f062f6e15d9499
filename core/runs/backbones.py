"""The backbone registry: one table, one entry per backbone.

Each entry knows its Keras constructor, its preprocessing (applied inside the
model, so an exported model takes plain 0-255 RGB), its default and smallest
input size, and a description for people choosing one. Adding a backbone is
adding one entry to :data:`BACKBONES`.

Preprocessing modes, as in ``keras.applications.*.preprocess_input``:
- ``caffe``: RGB to BGR, minus the ImageNet channel means (ResNet50/101, VGG16). Never ``/255``.
- ``tf``: scale to [-1, 1] (ResNet50V2, MobileNetV2, InceptionV3).
- ``none``: the model rescales inside itself (MobileNetV3, EfficientNet, ConvNeXt).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError

# ImageNet channel means in BGR order, from keras.applications.imagenet_utils (caffe mode).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@dataclass(frozen=True, kw_only=True)
class Backbone:
    name: str
    friendly: str
    keras_class: str  # attribute of keras.applications
    preprocess: str  # "caffe" | "tf" | "none"
    default_size: int
    min_size: int
    description: str  # translation key
    gmacs: float  # multiply-adds of one forward pass at the default size, in billions (the papers' figures)
    kwargs: dict[str, Any] = field(default_factory=dict)
    # Input sizes ImageNet weights exist for; other sizes load the nearest (Keras warns).

    def constructor(self) -> Callable[..., Any]:
        import keras

        return getattr(keras.applications, self.keras_class)

    def check_size(self, size: int) -> None:
        if size < self.min_size or size > 1024:
            raise ConfigError("err.config_range", field="image_size", low=self.min_size, high=1024, value=size)


# MobileNetV2 (Sandler et al. 2018, table 6) and EfficientNet (Tan & Le 2019, table 2) multiply-adds.
_MOBILENET_V2_GMACS = {0.35: 0.059, 0.5: 0.097, 0.75: 0.209, 1.0: 0.300, 1.3: 0.509, 1.4: 0.582}
_EFFICIENTNET_GMACS = {0: 0.39, 1: 0.70, 2: 1.0, 3: 1.8}


def _mobilenet_v2(alpha: float) -> Backbone:
    return Backbone(
        name=f"mobilenet_v2_{alpha}",
        friendly=f"MobileNetV2 ×{alpha}",
        keras_class="MobileNetV2",
        preprocess="tf",
        default_size=224,
        min_size=32,
        description="backbone.mobilenet_v2",
        gmacs=_MOBILENET_V2_GMACS[alpha],
        kwargs={"alpha": alpha},
    )


def _efficientnet(index: int, default_size: int) -> Backbone:
    return Backbone(
        name=f"efficientnet_b{index}",
        friendly=f"EfficientNet-B{index}",
        keras_class=f"EfficientNetB{index}",
        preprocess="none",
        default_size=default_size,
        min_size=32,
        description="backbone.efficientnet",
        gmacs=_EFFICIENTNET_GMACS[index],
    )


_ALL: tuple[Backbone, ...] = (
    Backbone(
        name="resnet50",
        friendly="ResNet50",
        keras_class="ResNet50",
        preprocess="caffe",
        default_size=224,
        min_size=32,
        description="backbone.resnet50",
        gmacs=4.1,
    ),
    Backbone(
        name="resnet50_v2",
        friendly="ResNet50 V2",
        keras_class="ResNet50V2",
        preprocess="tf",
        default_size=224,
        min_size=32,
        description="backbone.resnet50_v2",
        gmacs=4.1,
    ),
    Backbone(
        name="resnet101",
        friendly="ResNet101",
        keras_class="ResNet101",
        preprocess="caffe",
        default_size=224,
        min_size=32,
        description="backbone.resnet101",
        gmacs=7.8,
    ),
    *(_mobilenet_v2(a) for a in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)),
    Backbone(
        name="mobilenet_v3_small",
        friendly="MobileNetV3 Small",
        keras_class="MobileNetV3Small",
        preprocess="none",
        default_size=224,
        min_size=32,
        description="backbone.mobilenet_v3_small",
        gmacs=0.056,
    ),
    Backbone(
        name="mobilenet_v3_large",
        friendly="MobileNetV3 Large",
        keras_class="MobileNetV3Large",
        preprocess="none",
        default_size=224,
        min_size=32,
        description="backbone.mobilenet_v3_large",
        gmacs=0.217,
    ),
    *(_efficientnet(i, s) for i, s in ((0, 224), (1, 240), (2, 260), (3, 300))),
    Backbone(
        name="efficientnet_v2_b0",
        friendly="EfficientNetV2-B0",
        keras_class="EfficientNetV2B0",
        preprocess="none",
        default_size=224,
        min_size=32,
        description="backbone.efficientnet_v2",
        gmacs=0.72,
    ),
    Backbone(
        name="inception_v3",
        friendly="Inception V3",
        keras_class="InceptionV3",
        preprocess="tf",
        default_size=299,
        min_size=75,
        description="backbone.inception_v3",
        gmacs=5.7,
    ),
    Backbone(
        name="vgg16",
        friendly="VGG16",
        keras_class="VGG16",
        preprocess="caffe",
        default_size=224,
        min_size=32,
        description="backbone.vgg16",
        gmacs=15.5,
    ),
    Backbone(
        name="convnext_tiny",
        friendly="ConvNeXt Tiny",
        keras_class="ConvNeXtTiny",
        preprocess="none",
        default_size=224,
        min_size=32,
        description="backbone.convnext_tiny",
        gmacs=4.5,
    ),
)
BACKBONES: dict[str, Backbone] = {b.name: b for b in _ALL}
DEFAULT_BACKBONE = "resnet50"


def get_backbone(name: str) -> Backbone:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ConfigError("err.backbone_unknown", name=name, known=", ".join(BACKBONES)) from None


def keras_models_dir() -> Path:
    """Where Keras keeps the weights files it downloads (``$KERAS_HOME/models``)."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
