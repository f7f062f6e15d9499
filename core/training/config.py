"""``TrainConfig``: every training setting, with its default and its range, checked in one place."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.training.backbones import DEFAULT_BACKBONE, get_backbone

RESIZE_MODES = ("crop", "pad", "stretch")
SCHEDULES = ("cosine", "constant")
AUTO_ON_OFF = ("auto", "on", "off")
CACHE_MODES = ("auto", "memory", "none")
AUGMENT_PRESETS = ("none", "light", "standard", "strong")


def _range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError("err.config_range", field=name, low=low, high=high, value=value)


def _choice(name: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError("err.config_choice", field=name, value=value, options=", ".join(options))


@dataclass(frozen=True)
class AugmentConfig:
    """Each strength is a fraction: rotation of a full turn, zoom/translation of the side,
    contrast and brightness of the range. 0 switches that augmentation off."""

    flip: bool = True
    rotation: float = 0.05
    zoom: float = 0.1
    translation: float = 0.1
    contrast: float = 0.1
    brightness: float = 0.1

    def __post_init__(self) -> None:
        for name in ("rotation", "zoom", "translation", "contrast", "brightness"):
            _range(f"augment.{name}", getattr(self, name), 0.0, 0.5)

    @property
    def active(self) -> bool:
        return self.flip or any(v > 0 for k, v in asdict(self).items() if k != "flip")

    @classmethod
    def preset(cls, name: str) -> AugmentConfig:
        if name == "none":
            return cls(flip=False, rotation=0, zoom=0, translation=0, contrast=0, brightness=0)
        if name == "light":
            return cls(flip=True, rotation=0.02, zoom=0.05, translation=0.05, contrast=0.05, brightness=0.05)
        if name == "standard":
            return cls()
        if name == "strong":
            return cls(flip=True, rotation=0.15, zoom=0.25, translation=0.15, contrast=0.3, brightness=0.25)
        raise ConfigError("err.augment_unknown", name=name, known=", ".join(AUGMENT_PRESETS))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainConfig:
    """A run's full recipe. Defaults follow the keras-io transfer-learning guide and fastai's
    ``fine_tune``: train the head with the base frozen, then unfreeze with a 10x lower rate."""

    dataset: str
    backbone: str = DEFAULT_BACKBONE
    weights: str = "imagenet"  # "imagenet", "none" (from scratch) or a path to a weights file
    image_size: int = 0  # 0: the backbone's default
    resize: str = "crop"  # aspect-preserving centre crop, pad, or stretch
    batch_size: int = 32
    head_epochs: int = 15  # cheap on cached features; early stopping ends it sooner
    fine_tune_epochs: int = 10  # measured better than 5 on clothing-small; early stopping ends it sooner
    unfreeze: str = "all"  # "all" or a number of layers from the top of the base
    lr: float = 1e-3
    fine_tune_lr: float = 1e-4  # 10x below lr: measured better than 100x on clothing-small (BENCHMARKS.md)
    schedule: str = "cosine"  # linear warm-up then cosine decay, per phase; or constant
    warmup: float = 0.1  # fraction of each phase's steps spent warming up
    dropout: float = 0.2
    label_smoothing: float = 0.1
    class_weights: str = "auto"  # "auto" (inverse frequency) or "off"
    augment: str = "standard"  # none | light | standard | strong
    feature_cache: bool = True  # frozen phase trains the head on cached base features
    feature_views: int = 1  # augmented views per image in the feature cache (1: the image itself)
    early_stopping: int = 3  # patience in epochs on validation loss; 0 switches it off
    seed: int = 42
    mixed_precision: str = "auto"  # auto: on for GPUs
    jit_compile: str = "auto"  # auto: on for GPUs; on CPUs where it measured faster (see core/training/devices.py)
    cache: str = "auto"  # decoded-image cache: memory when it fits MEMORY_CACHE_BYTES
    steps_per_epoch: int = 0  # 0: the whole training split each epoch
    tensorboard: bool = False

    def __post_init__(self) -> None:
        if not self.dataset:
            raise ConfigError("err.config_required", field="dataset")
        backbone = get_backbone(self.backbone)
        if self.image_size:
            backbone.check_size(self.image_size)
        _range("batch_size", self.batch_size, 1, 4096)
        _range("head_epochs", self.head_epochs, 0, 1000)
        _range("fine_tune_epochs", self.fine_tune_epochs, 0, 1000)
        if self.head_epochs + self.fine_tune_epochs == 0:
            raise ConfigError("err.config_no_epochs")
        if self.unfreeze != "all" and not (self.unfreeze.isdigit() and int(self.unfreeze) > 0):
            raise ConfigError("err.config_choice", field="unfreeze", value=self.unfreeze, options="all, 1, 2, ...")
        _range("lr", self.lr, 1e-8, 10.0)
        _range("fine_tune_lr", self.fine_tune_lr, 1e-8, 10.0)
        _range("warmup", self.warmup, 0.0, 0.5)
        _range("dropout", self.dropout, 0.0, 0.9)
        _range("label_smoothing", self.label_smoothing, 0.0, 0.5)
        _range("feature_views", self.feature_views, 1, 32)
        if self.feature_views > 1 and self.augment == "none":
            raise ConfigError("err.config_views_need_augment", views=self.feature_views)
        _range("early_stopping", self.early_stopping, 0, 1000)
        _range("steps_per_epoch", self.steps_per_epoch, 0, 10**7)
        _choice("resize", self.resize, RESIZE_MODES)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("class_weights", self.class_weights, ("auto", "off"))
        _choice("augment", self.augment, AUGMENT_PRESETS)
        _choice("mixed_precision", self.mixed_precision, AUTO_ON_OFF)
        _choice("jit_compile", self.jit_compile, AUTO_ON_OFF)
        _choice("cache", self.cache, CACHE_MODES)
        if not self.weights:
            raise ConfigError("err.config_required", field="weights")
        if self.weights not in ("imagenet", "none") and not Path(self.weights).expanduser().is_file():
            raise ConfigError("err.weights_missing", path=self.weights)

    @property
    def size(self) -> int:
        return self.image_size or get_backbone(self.backbone).default_size

    @property
    def augment_config(self) -> AugmentConfig:
        return AugmentConfig.preset(self.augment)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# Every setting's default, for forms and command-line flags.
DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(TrainConfig) if f.name != "dataset"}
