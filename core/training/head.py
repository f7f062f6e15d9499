"""The recipe's compile step (optimizer, learning-rate schedule, loss) and the head trained alone on
cached base features: shared by the engine (the head phase of a run) and the settings search
(``core.training.tune``), so a setting found by the search means the same in the run it becomes."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from core.runs.config import TrainConfig


def schedule(lr: float, steps: int, config: TrainConfig) -> Any:
    import keras

    if config.schedule == "constant" or steps < 2:
        return lr
    warmup = int(steps * config.warmup)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr / 100 if warmup else lr,
        decay_steps=max(steps - warmup, 1),
        alpha=0.01,
        warmup_target=lr if warmup else None,
        warmup_steps=warmup,
    )


def compile_model(model: Any, lr: Any, config: TrainConfig, jit: bool) -> None:
    """Compile with the recipe's loss and optimizer (Adam, or AdamW with weight decay)."""
    import keras

    losses = {
        "loss": keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        "metrics": [keras.metrics.CategoricalAccuracy(name="accuracy")],
    }
    if config.teacher:
        from core.training.distill import compile_args

        losses = compile_args(int(model.output_shape[-1]), config)
    if config.weight_decay:
        optimizer = keras.optimizers.AdamW(learning_rate=lr, weight_decay=config.weight_decay)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=lr)
    model.compile(optimizer=optimizer, jit_compile=jit, **losses)


def fit_head_on_vectors(
    feats: Any,
    config: TrainConfig,
    n_classes: int,
    jit: bool,
    callbacks: list[Any],
    class_weights: dict[int, float] | None = None,
    on_built: Callable[[Any], None] | None = None,
    epochs: int | None = None,
    start: list[Any] | None = None,
) -> Any:
    """Train a fresh head (``config``'s dropout, seed, rate, schedule, smoothing, weight decay) on the
    cached vectors ``feats`` (``core.training.features.Features``) for ``epochs`` (the config's head
    epochs by default), validating on the validation vectors; returns the head-only model. ``on_built``
    sees the model before it trains (the engine's best-checkpoint callback reads its weights); ``start``: the
    head's weights to start from (a text head's) instead of the seeded random ones."""
    import keras

    from core.training.model import HEAD_LAYER, head_layers

    epochs = config.head_epochs if epochs is None else epochs
    inputs = keras.Input((feats.train_x.shape[1],), name="features")
    head = keras.Model(inputs, head_layers(n_classes, config.dropout, config.seed)(inputs), name="head_only")
    steps = math.ceil(len(feats.train_x) / config.planned_batch)
    if start is not None:
        head.get_layer(HEAD_LAYER).set_weights(start)
    compile_model(head, schedule(config.lr, steps * epochs, config), config, jit)
    if on_built:
        on_built(head)
    weights = None
    if class_weights is not None:
        weights = np.asarray([class_weights[i] for i in feats.train_y], dtype=np.float32)
    eye = np.eye(n_classes, dtype=np.float32)
    head.fit(
        feats.train_x,
        eye[feats.train_y],
        sample_weight=weights,
        batch_size=config.planned_batch,
        epochs=epochs,
        validation_data=(feats.val_x, eye[feats.val_y]),
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    return head
