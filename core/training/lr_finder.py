"""Learning-rate finder (fastai's ``lr_find``): runs the sweep described in ``core.training.lr_sweeps``
(TensorFlow; from ``python -m core lr-find``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from core.store.workspace import Workspace
from core.training.lr_sweeps import DIVERGENCE_FACTOR, SMOOTHING, LrSweep, suggest


def find_lr(
    ws: Workspace, config: Any, start: float = 1e-6, end: float = 1.0, steps: int = 100, progress: Any = None
) -> LrSweep:
    """Sweep the head's learning rate for ``config`` (a :class:`TrainConfig`); ``progress(done, total)``
    after the features (one unit) and after each step of the sweep."""
    import keras

    from core.training import features
    from core.training.model import build_model, head_layers
    from core.training.pipeline import load_training_data, use_memory_cache

    keras.utils.set_random_seed(config.seed)
    data = load_training_data(ws, config.dataset)
    n = len(data.classes)
    built = build_model(config.backbone, n, config.size, config.weights, config.dropout, config.seed)
    cache = use_memory_cache(config.cache, len(data.train) + len(data.val), config.size)
    feats = features.load_or_build(ws, config, data, built.model, cache)
    report = progress or (lambda done, total: None)
    report(1, steps + 1)
    inputs = keras.Input((feats.train_x.shape[1],))
    head = keras.Model(inputs, head_layers(n, config.dropout, config.seed)(inputs))
    optimizer = keras.optimizers.Adam(learning_rate=start)
    head.compile(optimizer=optimizer, loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing))
    y = np.eye(n, dtype=np.float32)[feats.train_y]
    rng = np.random.default_rng(config.seed)
    factor = (end / start) ** (1 / max(steps - 1, 1))
    rates: list[float] = []
    losses: list[float] = []
    smoothed, best = 0.0, math.inf
    for step in range(steps):
        rate = start * factor**step
        optimizer.learning_rate.assign(rate)
        idx = rng.choice(len(y), size=min(config.batch_size, len(y)), replace=False)
        loss = float(head.train_on_batch(feats.train_x[idx], y[idx]))
        report(step + 2, steps + 1)
        smoothed = SMOOTHING * smoothed + (1 - SMOOTHING) * loss
        value = smoothed / (1 - SMOOTHING ** (step + 1))
        if not math.isfinite(value):
            break
        rates.append(rate)
        losses.append(value)
        best = min(best, value)
        if value > DIVERGENCE_FACTOR * best:
            break
    return LrSweep(rates, losses, suggest(rates, losses))
