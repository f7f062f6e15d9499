"""Two fastai recipe options in Keras terms, each measured before it is kept (BENCHMARKS.md, "Recipe
options"): the one-cycle learning-rate schedule and discriminative (layer-wise) learning rates."""

from __future__ import annotations

import math
from typing import Any

import keras


@keras.saving.register_keras_serializable(package="labeltune")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """fastai's ``fit_one_cycle`` rate (Smith 2018): from ``peak / div`` up to ``peak`` over the first
    ``pct_start`` of the steps, then down to ``peak / (div * final_div)``, both halves cosine. (fastai also
    cycles Adam's first moment between 0.95 and 0.85; this schedule moves the rate only.)"""

    def __init__(self, peak: float, steps: int, pct_start: float = 0.25, div: float = 25.0,
                 final_div: float = 1e4) -> None:  # fmt: skip
        super().__init__()
        self.peak, self.steps, self.pct_start, self.div, self.final_div = peak, steps, pct_start, div, final_div

    def __call__(self, step: Any) -> Any:
        ops = keras.ops
        step = ops.cast(step, "float32")
        up = max(int(self.steps * self.pct_start), 1)
        down = max(self.steps - up, 1)
        start, low = self.peak / self.div, self.peak / (self.div * self.final_div)

        def cos(a: float, b: float, fraction: Any) -> Any:
            return b + (a - b) / 2 * (1 + ops.cos(math.pi * ops.clip(fraction, 0.0, 1.0)))

        return ops.where(step < up, cos(start, self.peak, step / up), cos(self.peak, low, (step - up) / down))

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "steps": self.steps, "pct_start": self.pct_start, "div": self.div,
                "final_div": self.final_div}  # fmt: skip


class _Layerwise:
    """An optimizer whose rate is multiplied, per variable, by ``factors[variable.path]`` (1 when absent):
    discriminative learning rates (fastai's ``slice(lo, hi)``), the base's earlier layers learning slower."""

    def __init__(self, factors: dict[str, float] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[call-arg]
        self.factors = dict(factors or {})
        self._by_index: list[float] = []

    def build(self, variables: list[Any]) -> None:
        super().build(variables)  # type: ignore[misc]
        # update_step sees the backend's variable (no Keras path on TensorFlow): look the factor up by index.
        self._by_index = [self.factors.get(v.path, 1.0) for v in variables]

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        factor = self._by_index[self._get_variable_index(variable)]  # type: ignore[attr-defined]
        if factor != 1.0:
            learning_rate = keras.ops.multiply(learning_rate, factor)
        super().update_step(gradient, variable, learning_rate)  # type: ignore[misc]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factors": self.factors}  # type: ignore[misc]


@keras.saving.register_keras_serializable(package="labeltune")
class LayerwiseAdam(_Layerwise, keras.optimizers.Adam):
    pass


@keras.saving.register_keras_serializable(package="labeltune")
class LayerwiseAdamW(_Layerwise, keras.optimizers.AdamW):
    pass


def layer_factors(base: Any, ratio: float) -> dict[str, float]:
    """Rate factors for the base's trainable layers: 1 for the top one, down geometrically to ``1/ratio``
    for the lowest trainable one (the head, outside the base, keeps 1)."""
    layers = [layer for layer in base.layers if layer.trainable and layer.trainable_weights]
    if ratio == 1.0 or len(layers) < 2:
        return {}
    out = {}
    for i, layer in enumerate(layers):
        factor = ratio ** (-(1 - i / (len(layers) - 1)))
        for weight in layer.trainable_weights:
            out[weight.path] = factor
    return out
