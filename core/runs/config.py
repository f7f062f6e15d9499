"""``TrainConfig``: every training setting, with its default and its range, checked in one place."""

from __future__ import annotations

from dataclasses import Field, asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.runs.backbones import DEFAULT_BACKBONE, get_backbone

RESIZE_MODES = ("crop", "pad", "stretch")
SCHEDULES = ("cosine", "constant")
AUTO_ON_OFF = ("auto", "on", "off")
CACHE_MODES = ("auto", "memory", "none")
AUGMENT_PRESETS = ("none", "light", "standard", "strong")
CLASS_WEIGHTS = ("auto", "off")


class Planning(StrEnum):
    """How a run settles its input size and fine-tuning epochs (``core.training.measured_plan``)."""

    FIXED = "fixed"  # exactly as set
    # The run tries the sizes around its image size on the frozen base, trains at the one its validation
    # images score best, and fits its fine-tuning epochs into ``max_minutes`` (none when too few fit).
    MEASURED = "measured"


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


def config_field(
    default: Any,
    *,
    choices: tuple[str, ...] | None = None,
    low: float | None = None,
    high: float | None = None,
    step: float | None = None,
    flag: str | None = None,
    basic: bool = False,
) -> Any:
    """A config field (``TrainConfig``, ``AuditConfig``) with everything the CLI and the form need, said once.

    Its label is the translation key ``setting.<name>``, its help ``help.<name>``; ``choices`` or
    ``low``/``high`` are its allowed values (checked in ``__post_init__``); ``flag`` renames its CLI
    option; ``basic`` puts it in the form's first rows instead of the advanced settings.
    """
    meta = {"choices": choices, "low": low, "high": high, "step": step, "flag": flag, "basic": basic}
    return field(default=default, metadata=meta)


def check_fields(config: Any) -> None:
    """Every :func:`setting` field of a config dataclass within its choices and range: the one check
    each config's ``__post_init__`` starts with."""
    for name in ("dataset", "weights"):  # the two a config cannot do without
        if hasattr(config, name) and not getattr(config, name):
            raise ConfigError("err.config_required", field=name)
    for f in fields(config):
        value, meta = getattr(config, f.name), f.metadata
        if meta.get("choices") is not None:
            _choice(f.name, value, meta["choices"])
        if meta.get("low") is not None:
            _range(f.name, value, meta["low"], meta["high"])


def check_weights_file(weights: str) -> None:
    """A weights setting that names a file names one that is here."""
    if weights not in ("imagenet", "none") and not Path(weights).expanduser().is_file():
        raise ConfigError("err.weights_missing", path=weights)


class ConfigBase:
    """What every config dataclass of :func:`setting` fields shares: stored as a dict, read back from one
    (keys it no longer has are dropped), and its fields a user sets (all but the dataset, chosen apart)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def user_fields(cls) -> tuple[Field, ...]:
        return tuple(f for f in fields(cls) if f.name != "dataset")  # type: ignore[arg-type]


# The batch size "auto" (0) plans with, and uses on a CPU (today's default).
AUTO_BATCH = 32

# Fine-tuning's rate is this many times below the head's (the keras-io guide says about 100; 10 measured
# better on clothing-small: BENCHMARKS.md). The default and the settings search both follow it.
FINE_TUNE_RATE_RATIO = 10
DEFAULT_LR = 1e-3


@dataclass(frozen=True)
class TrainConfig(ConfigBase):
    """A run's full recipe. Defaults follow the keras-io transfer-learning guide and fastai's
    ``fine_tune``: train the head with the base frozen, then unfreeze with a 10x lower rate.

    Each field's metadata (:func:`setting`) generates the ``python -m core train`` flags and the
    Train form's widgets: a new setting is one field here plus its label and help in the locales.
    """

    dataset: str = config_field("", basic=True)
    # A name of the table (core.runs.backbones), a local KerasHub preset folder, or a KerasHub handle.
    backbone: str = config_field(DEFAULT_BACKBONE, basic=True)
    # "imagenet" (pretrained: ImageNet, or a foundation preset's own weights), "none" (from scratch) or a
    # path to a weights file (keras.applications backbones)
    weights: str = config_field("imagenet", basic=True)
    image_size: int = config_field(0, low=0, high=1024, step=32, basic=True)  # 0: the backbone's default
    planning: str = config_field(Planning.FIXED, choices=tuple(Planning), basic=True)  # the advice: measured
    head_epochs: int = config_field(15, low=0, high=1000, basic=True)  # cheap on cached features
    fine_tune_epochs: int = config_field(10, low=0, high=1000, basic=True)  # measured better than 5 on clothing-small
    augment: str = config_field("standard", choices=AUGMENT_PRESETS, basic=True)
    # 0: auto, the largest of a few sizes that fits the GPU, found when the run starts and halved if a step
    # later runs out of memory (core.training.batch_fit); on a CPU auto is AUTO_BATCH
    batch_size: int = config_field(32, low=0, high=4096)
    lr: float = config_field(DEFAULT_LR, low=1e-8, high=10.0, step=1e-4)
    fine_tune_lr: float = config_field(DEFAULT_LR / FINE_TUNE_RATE_RATIO, low=1e-8, high=10.0, step=1e-5)
    unfreeze: str = config_field("all")  # "all" or a number of layers from the top of the base
    early_stopping: int = config_field(3, low=0, high=1000)  # patience in epochs on validation loss; 0 switches it off
    label_smoothing: float = config_field(0.1, low=0.0, high=0.5, step=0.05)
    dropout: float = config_field(0.2, low=0.0, high=0.9, step=0.05)
    weight_decay: float = config_field(0.0, low=0.0, high=0.5, step=1e-4)  # decoupled (AdamW); 0: plain Adam
    class_weights: str = config_field("auto", choices=CLASS_WEIGHTS)  # auto: inverse frequency
    feature_cache: bool = config_field(True)  # frozen phase trains the head on cached base features
    feature_views: int = config_field(1, low=1, high=32)  # augmented views per image in the feature cache
    seed: int = config_field(42, low=0, high=2**31 - 1)
    resize: str = config_field("crop", choices=RESIZE_MODES)  # aspect-preserving centre crop, pad, or stretch
    schedule: str = config_field("cosine", choices=SCHEDULES)  # linear warm-up then cosine decay, per phase
    warmup: float = config_field(0.1, low=0.0, high=0.5, step=0.05)  # fraction of each phase's steps
    mixed_precision: str = config_field("auto", choices=AUTO_ON_OFF)  # auto: on for GPUs
    jit_compile: str = config_field("auto", choices=AUTO_ON_OFF, flag="xla")  # auto: on for GPUs (slower on CPUs)
    cache: str = config_field("auto", choices=CACHE_MODES)  # decoded images in memory when they fit
    steps_per_epoch: int = config_field(0, low=0, high=10**7)  # 0: the whole training split each epoch
    max_minutes: float = config_field(0.0, low=0.0, high=10**5, step=1.0)  # training time limit; 0: none
    tensorboard: bool = config_field(False)
    # Knowledge distillation (Hinton et al. 2015): a completed run of the same dataset as the teacher;
    # the loss mixes the true labels (weight distill_alpha) and the teacher's probabilities softened at
    # the temperature (the rest, times temperature², as in the paper). Empty: plain training.
    teacher: str = config_field("")
    temperature: float = config_field(4.0, low=1.0, high=20.0, step=0.5)
    distill_alpha: float = config_field(0.3, low=0.0, high=1.0, step=0.1)
    # Image-text backbones (SigLIP, CLIP): the head starts as the class prompts' text embeddings (each
    # class's name and description in ``prompt_template``; empty: a template in the names' language).
    # With no epochs at all this is a zero-shot run (core.training.zero_shot).
    text_head: bool = config_field(False)
    prompt_template: str = config_field("")

    def __post_init__(self) -> None:
        check_fields(self)
        backbone = get_backbone(self.backbone)
        if self.image_size:
            backbone.check_size(self.image_size)
        if backbone.foundation and self.weights not in ("imagenet", "none"):
            raise ConfigError("err.weights_file_foundation", backbone=backbone.friendly)
        if self.text_head and not backbone.family.image_text:
            raise ConfigError("err.text_head_needs_image_text", backbone=backbone.friendly)
        if self.prompt_template and "{name}" not in self.prompt_template:
            raise ConfigError("err.prompt_template", template=self.prompt_template)
        if self.head_epochs + self.fine_tune_epochs == 0 and not self.text_head:
            raise ConfigError("err.config_no_epochs")
        if self.unfreeze != "all" and not (self.unfreeze.isdigit() and int(self.unfreeze) > 0):
            raise ConfigError("err.config_choice", field="unfreeze", value=self.unfreeze, options="all, 1, 2, ...")
        if self.feature_views > 1 and self.augment == "none":
            raise ConfigError("err.config_views_need_augment", views=self.feature_views)

    def check_files(self) -> None:
        """The files the config names are here: checked when a run is created or starts, not when a stored
        run is read (a run whose weights file moved since is still listed, and fails with its name)."""
        check_weights_file(self.weights)

    @property
    def planned_batch(self) -> int:
        """The batch size to plan with: the one set, or for auto (0) ``AUTO_BATCH`` (a run on a GPU finds its
        own when it starts: ``core.training.batch_fit``)."""
        return self.batch_size or AUTO_BATCH

    @property
    def zero_shot(self) -> bool:
        """A model from the class prompts alone: a text head and no training."""
        return self.text_head and self.head_epochs + self.fine_tune_epochs == 0

    @property
    def size(self) -> int:
        """The model's input size: the one the user set, else the backbone's default. Every place that
        needs the size a run trained (and serves) at asks this."""
        return self.image_size or get_backbone(self.backbone).default_size

    @property
    def augment_config(self) -> AugmentConfig:
        return AugmentConfig.preset(self.augment)


def flag_name(f: Field) -> str:
    """A setting's command-line flag: ``--`` and its name (or its ``flag``), dashes for underscores."""
    return "--" + (f.metadata.get("flag") or f.name).replace("_", "-")
