"""Training-time augmentation as Keras preprocessing layers, with named presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from core.errors import ConfigError

PRESETS = ("none", "light", "standard", "strong")


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
            value = getattr(self, name)
            if not 0.0 <= value <= 0.5:
                raise ConfigError("err.config_range", field=f"augment.{name}", low=0, high=0.5, value=value)

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
        raise ConfigError("err.augment_unknown", name=name, known=", ".join(PRESETS))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_augmenter(config: AugmentConfig, seed: int) -> Any:
    """A ``keras.Sequential`` of random layers over 0-255 float images (identity when inactive)."""
    import keras

    layers: list[Any] = []
    if config.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if config.rotation:
        layers.append(keras.layers.RandomRotation(config.rotation, fill_mode="reflect", seed=seed + 1))
    if config.zoom:
        layers.append(keras.layers.RandomZoom(config.zoom, fill_mode="reflect", seed=seed + 2))
    if config.translation:
        layers.append(
            keras.layers.RandomTranslation(config.translation, config.translation, fill_mode="reflect", seed=seed + 3)
        )
    if config.contrast:
        layers.append(keras.layers.RandomContrast(config.contrast, value_range=(0, 255), seed=seed + 4))
    if config.brightness:
        layers.append(keras.layers.RandomBrightness(config.brightness, value_range=(0, 255), seed=seed + 5))
    return keras.Sequential(layers, name="augment")


def preview(paths: list[str], config: AugmentConfig, size: int, resize: str, views: int = 4, seed: int = 0) -> Any:
    """``views`` augmented versions of each image, as uint8 arrays ``(len(paths), views, size, size, 3)``:
    what the model will see in training, for the user to judge the strength."""
    import numpy as np
    import tensorflow as tf

    from core.data import load_pixels

    images = tf.stack([tf.cast(load_pixels(tf.io.read_file(p), size, resize), tf.float32) for p in paths])
    augmenter = build_augmenter(config, seed)
    out = [augmenter(images, training=True) if config.active else images for _ in range(views)]
    return np.clip(np.stack([np.asarray(v) for v in out], axis=1), 0, 255).astype(np.uint8)
