"""Presets: three recipes a newcomer can pick without knowing the settings.

A preset is a set of ``TrainConfig`` field values over the defaults; choosing one fills the form (or
the CLI's defaults) and every field can still be changed. Its name and its one sentence on when to
use it are the translation keys ``preset.<name>`` and ``preset.<name>_when``.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from core.errors import ConfigError
from core.runs.config import TrainConfig
from core.training.estimate import has_gpu

PRESETS: dict[str, dict[str, Any]] = {
    # MobileNetV2 ×0.35 (its ImageNet weights ship with LabelTune, so it works offline), the head alone
    # on cached features: one pass of the base over the images, then seconds per epoch.
    "quick": {
        "backbone": "mobilenet_v2_0.35",
        "weights": "imagenet",
        "image_size": 0,
        "head_epochs": 15,
        "fine_tune_epochs": 0,
        "augment": "light",
        "feature_cache": True,
        "early_stopping": 3,
    },
    # The defaults (head, then fine-tuning), with the backbone, size and epochs the advice gives for the
    # dataset on this machine (``core.training.advice``): ResNet50 at 224 px on a GPU.
    "balanced": {},
    # ResNet50 with longer fine-tuning and stronger augmentation; on a laptop this is hours. On a GPU the
    # backbone is DINOv2-B/14 with registers instead (BEST_ON_GPU): the strongest features for a small
    # dataset (its authors' linear probe: 84.5 % ImageNet top-1 frozen, about 2 points more fine-tuned).
    "best": {
        "backbone": "resnet50",
        "weights": "imagenet",
        "head_epochs": 15,
        "fine_tune_epochs": 30,
        "augment": "strong",
        "early_stopping": 5,
        "fine_tune_lr": 5e-5,
    },
}
DEFAULT_PRESET = "balanced"
BEST_ON_GPU = {"backbone": "dinov2_with_registers_base", "image_size": 224}


def preset_values(name: str, advised: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every setting's value under preset ``name`` (defaults for the fields it leaves alone); ``advised``:
    the advice's values (``Advice.values()``), which the balanced preset follows."""
    if name not in PRESETS:
        raise ConfigError("err.config_choice", field="preset", value=name, options=", ".join(PRESETS))
    defaults = {f.name: f.default for f in fields(TrainConfig) if f.name != "dataset"}
    if name == DEFAULT_PRESET:
        defaults.update(advised or {})
    if name == "best" and has_gpu():
        return {**defaults, **PRESETS[name], **BEST_ON_GPU}
    return {**defaults, **PRESETS[name]}


def matching_preset(values: dict[str, Any], advised: dict[str, Any] | None = None) -> str | None:
    """The preset whose values these are, if any (the form shows "custom" once the user edits a field)."""
    for name in PRESETS:
        full = preset_values(name, advised)
        if all(values.get(k, v) == v for k, v in full.items()):
            return name
    return None
