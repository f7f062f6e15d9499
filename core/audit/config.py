"""``AuditConfig``: the audit's settings, with their defaults and ranges, checked in one place. Its
fields make the ``python -m core audit`` flags and the Audit view's widgets (``setting.<name>`` labels,
``help.<name>`` helps), as ``TrainConfig``'s do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.runs.backbones import BACKBONES, get_backbone
from core.runs.config import Settings, check_settings, setting

# The bundled ImageNet weights (works offline) at their own size: features good enough to compare
# images, in seconds per thousand images on a laptop CPU.
AUDIT_BACKBONE = "mobilenet_v2_0.35"
AUDIT_SIZE = 224
# Cosine similarity (of centred, normalised features) above which two images are called copies.
# Calibrated on clothing-small (bench/bench_audit.py near-duplicates): see BENCHMARKS.md.
SIMILARITY = 0.87


@dataclass(frozen=True)
class AuditConfig(Settings):
    dataset: str = setting("")
    backbone: str = setting(AUDIT_BACKBONE, choices=tuple(BACKBONES), basic=True)
    weights: str = setting("imagenet")  # "imagenet", "none" or a weights file (as for training)
    image_size: int = setting(AUDIT_SIZE, low=32, high=1024, step=32)
    folds: int = setting(5, low=2, high=20, basic=True)  # K of the out-of-fold probabilities
    similarity: float = setting(SIMILARITY, low=0.5, high=1.0, step=0.01, basic=True)
    seed: int = setting(0, low=0, high=2**31 - 1)

    def __post_init__(self) -> None:
        check_settings(self)
        get_backbone(self.backbone).check_size(self.image_size)


def audit_settings() -> tuple[Any, ...]:
    """The fields a user sets, in form order (the dataset is chosen apart)."""
    return AuditConfig.user_settings()


def field_help(name: str, lang: str) -> str:
    from core.i18n import tr

    return tr(f"audit.help_{name}", lang)
