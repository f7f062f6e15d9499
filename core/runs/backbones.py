"""The backbone registry: one table, one entry per backbone.

Two kinds of entries: ``keras.applications`` CNNs (:attr:`Family.KERAS`), and foundation models from
KerasHub (DINOv2, SigLIP / SigLIP 2, CLIP: their image towers), named by a KerasHub preset. Besides the
table's names, a backbone may be a local KerasHub preset folder (what ``save_to_preset`` writes; its
family is read from its ``config.json``) or a KerasHub handle (``hf://``, ``modelscope://``,
``kaggle://``; the family from the handle's name, checked against the preset's config when it loads).
Nothing here imports KerasHub or TensorFlow.

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

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.errors import ConfigError

# ImageNet channel means in BGR order, from keras.applications.imagenet_utils (caffe mode).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


class Family(StrEnum):
    """Where a backbone comes from, which decides how it is built, pooled and explained."""

    KERAS = "keras"  # keras.applications: a CNN, global average pooling
    DINOV2 = "dinov2"  # KerasHub DINOV2Backbone: the class token with the mean of the patch tokens
    SIGLIP = "siglip"  # KerasHub SigLIPBackbone (SigLIP and SigLIP 2): the image tower's pooled output
    CLIP = "clip"  # KerasHub CLIPBackbone: the image tower's projected embedding

    @property
    def image_text(self) -> bool:
        """An image-text model: its text tower turns class prompts into a classifier (zero-shot)."""
        return self in (Family.SIGLIP, Family.CLIP)


# KerasHub backbone classes, by the name their presets' config.json registers.
HUB_CLASSES = {"DINOV2Backbone": Family.DINOV2, "SigLIPBackbone": Family.SIGLIP, "CLIPBackbone": Family.CLIP}
HUB_SCHEMES = ("hf://", "modelscope://", "kaggle://")
PRESET_CONFIG = "config.json"


@dataclass(frozen=True, kw_only=True)
class Backbone:
    name: str
    friendly: str
    keras_class: str = ""  # attribute of keras.applications (Family.KERAS)
    preprocess: str  # "caffe" | "tf" | "none" | "hub" (the preset's own image converter)
    default_size: int
    min_size: int
    description: str  # translation key
    gmacs: float  # multiply-adds of one forward pass at the default size, in billions (the papers' figures)
    kwargs: dict[str, Any] = field(default_factory=dict)
    family: Family = Family.KERAS
    preset: str = ""  # the KerasHub preset: a name, a local folder or a handle
    patch: int = 0  # a transformer's patch side: sizes must be multiples of it
    fixed_size: bool = False  # position embeddings for one grid only (SigLIP, CLIP): the preset's own size

    @property
    def foundation(self) -> bool:
        return self.family is not Family.KERAS

    def constructor(self) -> Callable[..., Any]:
        import keras

        return getattr(keras.applications, self.keras_class)

    def fit_size(self, size: int) -> int:
        """The accepted size nearest ``size``: the preset's own for a fixed grid, else a patch multiple."""
        if self.fixed_size:
            return self.default_size
        if self.patch:
            size = max(self.min_size, round(size / self.patch) * self.patch)
        return min(max(size, self.min_size), 1024)

    def check_size(self, size: int) -> None:
        if self.fixed_size and size != self.default_size:
            raise ConfigError("err.size_fixed", backbone=self.friendly, size=self.default_size, value=size)
        if self.patch and size % self.patch:
            below, above = size // self.patch * self.patch, (size // self.patch + 1) * self.patch
            raise ConfigError(
                "err.size_patch", backbone=self.friendly, patch=self.patch, value=size, below=below, above=above
            )
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


# Foundation models (KerasHub presets). Multiply-adds of the image tower at the size given, from the
# token count: a ViT block costs about 12·d² + 2·n·d per token (n tokens of width d), times the depth.
def _vit_gmacs(size: int, patch: int, width: int, depth: int, extra_tokens: int = 1) -> float:
    n = (size // patch) ** 2 + extra_tokens
    return round(depth * n * (12 * width**2 + 2 * n * width) / 1e9 + 3 * width * patch**2 * n / 1e9, 1)


def _hub(preset: str, friendly: str, family: Family, *, size: int, patch: int, width: int, depth: int,
         registers: int = 0) -> Backbone:  # fmt: skip
    extra = {Family.DINOV2: 1 + registers, Family.CLIP: 1, Family.SIGLIP: 0}[family]
    return Backbone(
        name=preset,
        friendly=friendly,
        preprocess="hub",
        default_size=size,
        min_size=size if family is not Family.DINOV2 else patch * 2,  # a 2x2 patch grid at least
        description=f"backbone.{family.value}",
        gmacs=_vit_gmacs(size, patch, width, depth, extra),
        family=family,
        preset=preset,
        patch=patch,
        fixed_size=family is not Family.DINOV2,  # DINOv2 interpolates its position embeddings
    )


# preset, shown name, family, size, patch, width, depth, register tokens
_FOUNDATION_ROWS: tuple[tuple[str, str, Family, int, int, int, int, int], ...] = (
    ("dinov2_small", "DINOv2 ViT-S/14", Family.DINOV2, 224, 14, 384, 12, 0),
    ("dinov2_base", "DINOv2 ViT-B/14", Family.DINOV2, 224, 14, 768, 12, 0),
    ("dinov2_with_registers_small", "DINOv2 ViT-S/14 + registers", Family.DINOV2, 224, 14, 384, 12, 4),
    ("dinov2_with_registers_base", "DINOv2 ViT-B/14 + registers", Family.DINOV2, 224, 14, 768, 12, 4),
    ("siglip2_base_patch16_224", "SigLIP 2 ViT-B/16 (multilingual)", Family.SIGLIP, 224, 16, 768, 12, 0),
    ("siglip2_base_patch16_256", "SigLIP 2 ViT-B/16 256 (multilingual)", Family.SIGLIP, 256, 16, 768, 12, 0),
    ("siglip_base_patch16_256_multilingual", "SigLIP ViT-B/16 (multilingual)", Family.SIGLIP, 256, 16, 768, 12, 0),
    ("siglip_base_patch16_224", "SigLIP ViT-B/16 (English)", Family.SIGLIP, 224, 16, 768, 12, 0),
    ("clip_vit_base_patch16", "CLIP ViT-B/16 (English)", Family.CLIP, 224, 16, 768, 12, 0),
    ("clip_vit_base_patch32", "CLIP ViT-B/32 (English)", Family.CLIP, 224, 32, 768, 12, 0),
)
_FOUNDATION = tuple(
    _hub(preset, friendly, family, size=size, patch=patch, width=width, depth=depth, registers=registers)
    for preset, friendly, family, size, patch, width, depth, registers in _FOUNDATION_ROWS
)
BACKBONES: dict[str, Backbone] = {b.name: b for b in (*_ALL, *_FOUNDATION)}
DEFAULT_BACKBONE = "resnet50"
# The zero-shot default: multilingual, so Chinese class names and descriptions work.
DEFAULT_IMAGE_TEXT = "siglip2_base_patch16_224"
IMAGE_TEXT = tuple(name for name, b in BACKBONES.items() if b.family.image_text)  # what zero-shot can use


def get_backbone(name: str) -> Backbone:
    """A table entry, a local KerasHub preset folder, or a KerasHub handle (see the module's docstring)."""
    if name in BACKBONES:
        return BACKBONES[name]
    if name.startswith(HUB_SCHEMES):
        return _handle(name)
    folder = Path(name).expanduser()
    if (folder / PRESET_CONFIG).is_file():
        return preset_folder(folder)
    raise ConfigError("err.backbone_unknown", name=name, known=", ".join(BACKBONES)) from None


def read_preset_config(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / PRESET_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError("err.preset_unreadable", path=str(folder), reason=str(exc)[:200]) from exc


def preset_folder(folder: Path) -> Backbone:
    """The backbone a local KerasHub preset folder holds, its family and sizes read from its config."""
    config = read_preset_config(folder)
    cls = str(config.get("registered_name", config.get("class_name", ""))).rsplit(">", 1)[-1]
    if cls not in HUB_CLASSES:
        raise ConfigError("err.preset_family", path=str(folder), found=cls or "?", known=", ".join(HUB_CLASSES))
    family, inner = HUB_CLASSES[cls], config.get("config", {})
    vision = inner.get("vision_encoder", {}).get("config", inner)
    size, patch = int(vision.get("image_shape", [224])[0]), int(vision.get("patch_size", 14))
    width, depth = int(vision.get("hidden_dim", 384)), int(vision.get("num_layers", 12))
    entry = _hub(str(folder), folder.name, family, size=size, patch=patch, width=width, depth=depth,
                 registers=int(inner.get("num_register_tokens", 0)))  # fmt: skip
    return entry


def _handle(handle: str) -> Backbone:
    """A hub handle, its family and sizes guessed from its name (``..._patch16_256``); the run checks
    them against the preset's own config once it is downloaded."""
    lower = handle.lower()
    family = next((f for f in (Family.DINOV2, Family.SIGLIP, Family.CLIP) if f.value in lower), None)
    if family is None:
        raise ConfigError("err.preset_family", path=handle, found="?", known=", ".join(HUB_CLASSES))
    patch = int(m.group(1)) if (m := re.search(r"patch(\d+)", lower)) else 14 if family is Family.DINOV2 else 16
    size = int(m.group(1)) if (m := re.search(r"_(\d{3})(?:_|$)", lower)) else 224
    base = "large" not in lower and "so400m" not in lower
    return _hub(handle, handle.split("/")[-1], family, size=size, patch=patch, width=768 if base else 1024,
                depth=12 if base else 24)  # fmt: skip


def hub_cache_dir() -> Path:
    """Where KerasHub (through kagglehub) keeps the presets it downloads."""
    return Path(os.environ.get("KAGGLEHUB_CACHE", Path.home() / ".cache" / "kagglehub"))


def keras_models_dir() -> Path:
    """Where Keras keeps the weights files it downloads (``$KERAS_HOME/models``)."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
