"""The recipe options from fastai, as Keras pieces: the one-cycle rate and layer-wise rates."""

import keras
import numpy as np
import pytest

from core.training.model import build_model, set_unfrozen
from core.training.optim import LayerwiseAdam, OneCycle, layer_factors


def test_one_cycle_rises_to_the_peak_then_anneals_far_below_the_start():
    schedule = OneCycle(1e-2, 100)
    rates = [float(schedule(step)) for step in range(101)]
    assert rates[0] == pytest.approx(1e-2 / 25, rel=1e-5) and rates[25] == pytest.approx(1e-2, rel=1e-5)
    assert rates[100] == pytest.approx(1e-2 / 25 / 1e4, rel=1e-3)
    assert all(a <= b for a, b in zip(rates[:25], rates[1:26], strict=True))  # up
    assert all(a >= b for a, b in zip(rates[25:100], rates[26:], strict=True))  # then down
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert float(again(40)) == pytest.approx(rates[40], rel=1e-5)


def test_a_layer_with_a_factor_moves_that_much_slower():
    inputs = keras.Input((4,))
    low = keras.layers.Dense(4, name="low")
    high = keras.layers.Dense(2, name="high")
    model = keras.Model(inputs, high(low(inputs)))
    factors = {w.path: 0.1 for w in low.trainable_weights}
    model.compile(optimizer=LayerwiseAdam(factors, learning_rate=0.01), loss="mse")
    before = [keras.ops.convert_to_numpy(w) for w in (low.kernel, high.kernel)]
    x, y = np.random.default_rng(0).normal(size=(8, 4)), np.ones((8, 2))
    model.train_on_batch(x, y)
    moved = [
        np.abs(keras.ops.convert_to_numpy(w) - b).max() for w, b in zip((low.kernel, high.kernel), before, strict=True)
    ]
    # Adam's first step moves every weight by about its rate: 0.001 for the slow layer, 0.01 for the other.
    assert moved[0] == pytest.approx(0.001, rel=0.05) and moved[1] == pytest.approx(0.01, rel=0.05)


def test_layer_factors_run_from_one_at_the_top_to_one_over_the_ratio_at_the_bottom():
    built = build_model("mobilenet_v2_0.35", 3, 32, "none", 0.0, seed=0)
    set_unfrozen(built.base, "20")
    factors = layer_factors(built.base, 10.0)
    trainable = [layer for layer in built.base.layers if layer.trainable and layer.trainable_weights]
    assert len(trainable) == 20
    assert factors[trainable[-1].trainable_weights[0].path] == pytest.approx(1.0)
    assert factors[trainable[0].trainable_weights[0].path] == pytest.approx(0.1)
    assert layer_factors(built.base, 1.0) == {}
