"""``AuditConfig``: the audit's settings, with their defaults and ranges, checked in one place. Its
fields make the ``python -m core audit`` flags and the Audit view's widgets (``setting.<name>`` labels,
``help.<name>`` helps), as ``TrainConfig``'s do."""

from __future__ import annotations

from dataclasses import dataclass

from core.i18n import tr
from core.runs.backbones import BACKBONES, get_backbone
from core.runs.config import ConfigBase, check_fields, config_field

# The bundled ImageNet weights (works offline) at their own size: features good enough to compare
# images, in seconds per thousand images on a laptop CPU.
AUDIT_BACKBONE = "mobilenet_v2_0.35"
AUDIT_SIZE = 224
# Cosine similarity (of centred, normalised features) above which two images are called copies.
# Calibrated on clothing-small (bench/bench_audit.py near-duplicates): see BENCHMARKS.md.
SIMILARITY = 0.87


@dataclass(frozen=True)
class AuditConfig(ConfigBase):
    dataset: str = config_field("")
    backbone: str = config_field(AUDIT_BACKBONE, choices=tuple(BACKBONES), basic=True)
    weights: str = config_field("imagenet")  # "imagenet", "none" or a weights file (as for training)
    image_size: int = config_field(AUDIT_SIZE, low=0, high=1024, step=32)  # 0: the backbone's default, as in training
    folds: int = config_field(5, low=2, high=20, basic=True)  # K of the out-of-fold probabilities
    similarity: float = config_field(SIMILARITY, low=0.5, high=1.0, step=0.01, basic=True)
    seed: int = config_field(0, low=0, high=2**31 - 1)

    def __post_init__(self) -> None:
        check_fields(self)
        get_backbone(self.backbone).check_size(self.size)

    @property
    def size(self) -> int:
        """The input size the features are computed at: the one set, else the backbone's default (as
        ``TrainConfig.size``)."""
        return self.image_size or get_backbone(self.backbone).default_size


def field_help(name: str, lang: str) -> str:

    return tr(f"audit.help_{name}", lang)
