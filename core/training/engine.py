"""Two-phase fine-tuning of a run, from its stored config to a saved ``.keras`` model.

Phase ``head``: the base is frozen and only the head learns (on cached features
when ``feature_cache`` is on). Phase ``fine_tune``: the top layers of the base
are unfrozen (BatchNorm stays frozen), the model is recompiled with a lower
rate (``fine_tune_lr``, 10x below ``lr`` by default), and training continues. Each phase can be skipped.

A run talks to the outside only through the workspace: its row in ``runs``,
its metrics, and the ``STOP`` file in its folder. :func:`execute_run` is what
the worker process (and ``python -m core train``) calls.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from core.errors import ConfigError, TrainingError
from core.store.workspace import Workspace, utc_now
from core.training import runs
from core.training.callbacks import BestCheckpoint, NanGuard, RunReporter, StopFlag, save_atomic
from core.training.config import TrainConfig
from core.training.launcher import create_run
from core.training.pipeline import TrainingData, load_training_data, make_dataset, use_memory_cache

MODEL_FILE = "model.keras"
BEST_FILE = "best.keras"
HEAD_WEIGHTS = "head_phase.weights.h5"
STATE_FILE = "state.json"


def _schedule(lr: float, steps: int, config: TrainConfig) -> Any:
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


def _compile(model: Any, lr: Any, config: TrainConfig, jit: bool) -> None:
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=jit,
    )


@dataclass
class _Context:
    ws: Workspace
    run_id: str
    config: TrainConfig
    data: TrainingData
    jit: bool
    extra_callbacks: list[Any]
    stop: StopFlag
    nan: NanGuard


def _callbacks(ctx: _Context, phase: str, steps: int, epochs: int, offset: int, model_checkpoint: bool) -> list[Any]:
    import keras

    folder = runs.run_dir(ctx.ws, ctx.run_id)
    reporter = RunReporter(ctx.ws, ctx.run_id, phase, steps, epochs, ctx.config.batch_size, offset)
    out: list[Any] = [
        keras.callbacks.BackupAndRestore(str(folder / "backup" / phase), save_freq="epoch", delete_checkpoint=False),
        reporter,
        ctx.stop,
        ctx.nan,
    ]
    if ctx.config.early_stopping:
        out.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=ctx.config.early_stopping, restore_best_weights=True
            )
        )
    if model_checkpoint:
        out.append(BestCheckpoint(folder / BEST_FILE))
    if ctx.config.tensorboard:
        out.append(keras.callbacks.TensorBoard(log_dir=str(folder / "tensorboard" / phase)))
    return out + ctx.extra_callbacks


def _head_on_features(ctx: _Context, model: Any, cache: bool) -> None:
    import keras
    import numpy as np

    from core.training import features
    from core.training.model import HEAD_LAYER, head_layers

    config = ctx.config
    feats = features.load_or_build(ctx.ws, config, ctx.data, model, cache)
    n = len(ctx.data.classes)
    inputs = keras.Input((feats.train_x.shape[1],), name="features")
    head = keras.Model(inputs, head_layers(n, config.dropout, config.seed)(inputs), name="head_only")
    steps = math.ceil(len(feats.train_x) / config.batch_size)
    _compile(head, _schedule(config.lr, steps * config.head_epochs, config), config, ctx.jit)
    weights = None
    if config.class_weights == "auto":
        table = ctx.data.class_weights()
        weights = np.asarray([table[i] for i in feats.train_y], dtype=np.float32)
    head.fit(
        feats.train_x,
        np.eye(n, dtype=np.float32)[feats.train_y],
        sample_weight=weights,
        batch_size=config.batch_size,
        epochs=config.head_epochs,
        validation_data=(feats.val_x, np.eye(n, dtype=np.float32)[feats.val_y]),
        shuffle=True,
        verbose=0,
        callbacks=_callbacks(ctx, "head", steps, config.head_epochs, 0, model_checkpoint=False),
    )
    model.get_layer(HEAD_LAYER).set_weights(head.get_layer(HEAD_LAYER).get_weights())


def _fit(ctx: _Context, model: Any, phase: str, lr: float, epochs: int, offset: int, pipelines: dict) -> None:
    config = ctx.config
    train_ds, val_ds, steps = pipelines["train"], pipelines["val"], pipelines["steps"]
    _compile(model, _schedule(lr, steps * epochs, config), config, ctx.jit)
    model.fit(
        train_ds.repeat() if config.steps_per_epoch else train_ds,
        validation_data=val_ds,
        epochs=epochs,
        steps_per_epoch=config.steps_per_epoch or None,
        shuffle=False,  # the tf.data pipeline shuffles (seeded) itself
        verbose=0,
        callbacks=_callbacks(ctx, phase, steps, epochs, offset, model_checkpoint=True),
    )


def _evaluate(model: Any, pipelines: dict) -> dict[str, float]:
    out = {}
    for split in ("val", "test"):
        ds = pipelines.get(f"{split}_eval")
        if ds is not None:
            loss, accuracy = model.evaluate(ds, verbose=0)
            out[f"{split}_loss"], out[f"{split}_accuracy"] = float(loss), float(accuracy)
    return out


def _best_from_metrics(ws: Workspace, run_id: str) -> dict[str, Any]:
    epochs = [m for m in runs.read_metrics(ws, run_id) if "val_accuracy" in m]
    if not epochs:
        return {}
    best = max(epochs, key=lambda m: (m["val_accuracy"], -m.get("val_loss", 0.0)))
    return {"val_accuracy": best["val_accuracy"], "val_loss": best.get("val_loss"), "epoch": best["epoch"]}


def execute_run(ws: Workspace, run_id: str, extra_callbacks: list[Any] | None = None) -> runs.Run:
    """Run (or resume) ``run_id`` to its end; returns the run as stored afterwards."""
    import keras

    from core.training import devices
    from core.training.augment import build_augmenter
    from core.training.model import build_model, set_unfrozen

    run = runs.get_run(ws, run_id)
    if run.status not in ("queued", *runs.RESUMABLE):
        raise TrainingError("err.run_not_resumable", run=run_id, status=run.status)
    try:
        config = TrainConfig.from_dict(run.config)
    except ConfigError as exc:  # e.g. its weights file was moved since the run was created
        runs.update_run(ws, run_id, status="failed", error=exc.message("en"), ended_at=utc_now())
        return runs.get_run(ws, run_id)
    folder = runs.run_dir(ws, run_id)
    runs.clear_stop(ws, run_id)
    runs.update_run(ws, run_id, status="running", pid=os.getpid(), started_at=run.started_at or utc_now(), error="")
    try:
        data = load_training_data(ws, config.dataset)
        if data.classes != run.classes or data.version != run.dataset_version:
            raise TrainingError("err.dataset_changed", run=run_id, dataset=config.dataset)
        keras.utils.set_random_seed(config.seed)
        devices.enable_memory_growth()
        strategy = devices.make_strategy()
        plan = devices.plan(strategy, config.size, config.mixed_precision, config.jit_compile)
        devices.apply_precision(plan)
        n = len(data.classes)
        cache = use_memory_cache(config.cache, len(data.train) + len(data.val), config.size)
        with strategy.scope():
            built = build_model(config.backbone, n, config.size, config.weights, config.dropout, config.seed)
        runs.update_run(ws, run_id, weights_used=built.weights_used, device={**plan.to_dict(), "memory_cache": cache})
        ctx = _Context(
            ws,
            run_id,
            config,
            data,
            plan.jit_compile,
            list(extra_callbacks or []),
            StopFlag(folder / runs.STOP_FLAG),
            NanGuard(),
        )
        augmenter = build_augmenter(config.augment_config)
        weights = data.class_weights() if config.class_weights == "auto" else None
        common = {
            "n_classes": n,
            "size": config.size,
            "resize": config.resize,
            "batch_size": config.batch_size,
            "seed": config.seed,
            "cache": cache,
        }
        pipelines = {
            "train": make_dataset(data.train, training=True, augmenter=augmenter, class_weights=weights, **common),
            "val": make_dataset(data.val, training=False, **common),
            "steps": config.steps_per_epoch or math.ceil(len(data.train) / config.batch_size),
        }
        pipelines["val_eval"] = pipelines["val"]
        if len(data.test):
            pipelines["test_eval"] = make_dataset(data.test, training=False, **common)
        state = _read_state(folder)
        model = built.model
        with strategy.scope():
            if config.head_epochs and not state.get("head_done"):
                if config.feature_cache and plan.replicas == 1:
                    _head_on_features(ctx, model, cache)
                else:
                    _fit(ctx, model, "head", config.lr, config.head_epochs, 0, pipelines)
                model.save_weights(folder / HEAD_WEIGHTS)
                _write_state(folder, head_done=not (ctx.stop.stopped or ctx.nan.where))
            elif state.get("head_done"):
                model.load_weights(folder / HEAD_WEIGHTS)
            if config.fine_tune_epochs and not (ctx.stop.stopped or ctx.nan.where):
                unfrozen = set_unfrozen(built.base, config.unfreeze)
                runs.update_run(
                    ws, run_id, device={**plan.to_dict(), "memory_cache": cache, "unfrozen_layers": unfrozen}
                )
                _fit(
                    ctx, model, "fine_tune", config.fine_tune_lr, config.fine_tune_epochs, config.head_epochs, pipelines
                )
            if not ctx.nan.where:
                _compile(model, config.lr, config, plan.jit_compile)
                final = _evaluate(model, pipelines)
        if ctx.nan.where:
            epoch, batch = ctx.nan.where
            raise TrainingError("err.nan_loss", epoch=epoch + 1, batch=batch + 1)
        save_atomic(model, folder / MODEL_FILE)
        status = "stopped" if ctx.stop.stopped else "completed"
        runs.update_run(
            ws,
            run_id,
            status=status,
            epochs_run=len({(m["phase"], m["epoch"]) for m in runs.read_metrics(ws, run_id)}),
            final=final,
            best=_best_from_metrics(ws, run_id),
            model_path=str((folder / MODEL_FILE).relative_to(ws.root)),
            ended_at=utc_now(),
        )
    except TrainingError as exc:
        runs.update_run(ws, run_id, status="failed", error=exc.message("en"), ended_at=utc_now())
    except Exception as exc:
        import tensorflow as tf

        if isinstance(exc, tf.errors.ResourceExhaustedError):
            message = TrainingError("err.oom", batch=config.batch_size, size=config.size).message("en")
            runs.update_run(ws, run_id, status="failed", error=message, ended_at=utc_now())
        else:
            runs.update_run(ws, run_id, status="failed", error=f"{type(exc).__name__}: {exc}", ended_at=utc_now())
            raise
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return runs.get_run(ws, run_id)


def _read_state(folder: Any) -> dict[str, Any]:
    import json

    path = folder / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _write_state(folder: Any, **values: Any) -> None:
    runs.write_json_atomic(folder / STATE_FILE, {**_read_state(folder), **values})


def train(ws: Workspace, config: TrainConfig, extra_callbacks: list[Any] | None = None) -> runs.Run:
    """Create a run for ``config`` and execute it in this process."""
    return execute_run(ws, create_run(ws, config), extra_callbacks)
