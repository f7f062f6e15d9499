"""The batch size "auto" (``batch_size`` 0): on a GPU, the largest of a few candidates whose training step
fits in its memory, found before training by one step of each (largest first) with the whole base
unfrozen, the phase that needs the most; on a CPU, ``AUTO_BATCH`` (today's default: memory is rarely what
limits it there). A run whose step later runs out of memory anyway (a larger image, another process on
the GPU) halves it and resumes from its last epoch (``core.training.engine.execute``). The run records
what it used (its device record: ``batch_size``, and ``batch_halved`` for each halving)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from core.errors import TrainingError
from core.runs.config import AUTO_BATCH, TrainConfig

CANDIDATES = (256, 128, 64, 32, 16, 8)


def largest_that_fits(step: Callable[[int], None], candidates: tuple[int, ...] = CANDIDATES) -> int:
    """The first of ``candidates`` (largest first) whose ``step(batch)`` does not run out of memory."""
    import tensorflow as tf

    for batch in candidates:
        try:
            step(batch)
        except tf.errors.ResourceExhaustedError:
            continue
        return batch
    raise TrainingError("err.oom_auto", smallest=candidates[-1])


def probe(built: Any, size: int, n_classes: int) -> Callable[[int], None]:
    """One training step at a batch size, everything but BatchNorm unfrozen, on random pixels; the model's
    weights and trainable flags are as they were afterwards."""
    import keras

    from core.training.model import set_unfrozen

    def step(batch: int) -> None:
        weights = built.model.get_weights()
        flags = [(layer, layer.trainable) for layer in (built.model, built.base, *built.base.layers)]
        try:
            set_unfrozen(built, "all")
            built.model.compile(optimizer=keras.optimizers.SGD(), loss="categorical_crossentropy")
            x = np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype(np.float32)
            built.model.train_on_batch(x, np.eye(n_classes, dtype=np.float32)[np.arange(batch) % n_classes])
        finally:
            for layer, trainable in flags:
                layer.trainable = trainable
            if built.pool is not None:
                built.pool.trainable = False
            built.model.set_weights(weights)

    return step


def choose(config: TrainConfig, built: Any, n_classes: int, gpu: bool) -> int:
    """The batch size a run trains with: the one set; for auto, the largest that fits a GPU, else AUTO_BATCH."""
    if config.batch_size:
        return config.batch_size
    return largest_that_fits(probe(built, config.size, n_classes)) if gpu else AUTO_BATCH
