"""``ExportConfig``: what to export from a run and how strictly to check it, validated in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.errors import ConfigError

# The formats a run exports to: Keras 3, a TensorFlow SavedModel (serving signature on image bytes),
# TensorFlow Lite in float32, float16 and full-integer int8, and ONNX (float32, for ONNX Runtime).
VARIANTS = ("keras", "savedmodel", "tflite_float32", "tflite_float16", "tflite_int8", "onnx")
FORMATS = ("keras", "savedmodel", "tflite", "onnx")
QUANTIZE = ("none", "float16", "int8")
# held to the agreement bar; int8's agreement is measured and shown
FLOAT_VARIANTS = ("keras", "savedmodel", "tflite_float32", "tflite_float16", "onnx")


def variant_of(fmt: str, quantize: str = "none") -> str:
    """The CLI's ``--format`` and ``--quantize`` as one variant name."""
    if fmt not in FORMATS:
        raise ConfigError("err.config_choice", field="format", value=fmt, options=", ".join(FORMATS))
    if quantize not in QUANTIZE:
        raise ConfigError("err.config_choice", field="quantize", value=quantize, options=", ".join(QUANTIZE))
    if fmt != "tflite":
        if quantize != "none":
            raise ConfigError("err.export_quantize_tflite", format=fmt, quantize=quantize)
        return fmt
    return f"tflite_{'float32' if quantize == 'none' else quantize}"


@dataclass(frozen=True)
class ExportConfig:
    run: str
    variants: tuple[str, ...] = field(default=VARIANTS)
    parity_images: int = 200  # test images every format predicts (all of the split up to this many)
    min_agreement: float = 0.99  # a float format whose top-1 agrees less with the app is not offered
    # the model with flip-averaged predictions built in (test-time augmentation): only where it helped the
    # run's validation images (core.runs.predictions.flip_helps)
    flip: bool = False

    def __post_init__(self) -> None:
        if not self.variants:
            raise ConfigError("err.config_required", field="variants")
        for v in self.variants:
            if v not in VARIANTS:
                raise ConfigError("err.config_choice", field="variants", value=v, options=", ".join(VARIANTS))
        if not 1 <= self.parity_images <= 10_000:
            raise ConfigError("err.config_range", field="parity_images", low=1, high=10_000, value=self.parity_images)
        if not 0.0 <= self.min_agreement <= 1.0:
            raise ConfigError("err.config_range", field="min_agreement", low=0, high=1, value=self.min_agreement)

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "variants": list(self.variants), "parity_images": self.parity_images,
                "min_agreement": self.min_agreement, "flip": self.flip}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportConfig:
        return cls(str(data["run"]), tuple(data["variants"]), int(data["parity_images"]), float(data["min_agreement"]),
                   bool(data.get("flip")))  # fmt: skip
