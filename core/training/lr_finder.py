"""Learning-rate finder (fastai's ``lr_find``): runs the sweep described in ``core.training.lr_sweeps``
(TensorFlow; from ``python -m core lr-find``)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from core.store.workspace import Workspace
from core.training.head import compile_model
from core.training.lr_sweeps import DIVERGENCE_FACTOR, SMOOTHING, LrSweep, suggest
from core.training.pipeline import load_training_data


def find_lr(
    ws: Workspace, config: Any, start: float = 1e-6, end: float = 1.0, steps: int = 100, progress: Any = None
) -> LrSweep:
    """Sweep the head's learning rate for ``config`` (a :class:`TrainConfig`); ``progress(done, total)``
    after the features (one unit) and after each step of the sweep."""
    import keras

    from core.training import features
    from core.training.model import head_layers, prepare_model

    data = load_training_data(ws, config.dataset)
    n = len(data.classes)
    prepared = prepare_model(config, data)
    feats = features.load_or_build(ws, config, data, prepared.built.model, prepared.memory_cache)
    report = progress or (lambda done, total: None)
    report(1, steps + 1)
    inputs = keras.Input((feats.train_x.shape[1],))
    head = keras.Model(inputs, head_layers(n, config.dropout, config.seed)(inputs))
    # Compiled as the run's head phase compiles it (optimizer, weight decay, label smoothing), with the
    # labels' own loss: a distilled run's teacher targets do not change which rate the head can take.
    compile_model(head, start, replace(config, teacher=""), jit=False)
    optimizer = head.optimizer
    y = np.eye(n, dtype=np.float32)[feats.train_y]
    weights = prepared.class_weights
    sample_weight = None if weights is None else np.asarray([weights[i] for i in feats.train_y], np.float32)
    rng = np.random.default_rng(config.seed)
    factor = (end / start) ** (1 / max(steps - 1, 1))
    rates: list[float] = []
    losses: list[float] = []
    smoothed, best = 0.0, math.inf
    for step in range(steps):
        rate = start * factor**step
        optimizer.learning_rate.assign(rate)
        idx = rng.choice(len(y), size=min(config.planned_batch, len(y)), replace=False)
        batch_weight = None if sample_weight is None else sample_weight[idx]
        loss = float(
            head.train_on_batch(feats.train_x[idx], y[idx], sample_weight=batch_weight, return_dict=True)["loss"]
        )
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
