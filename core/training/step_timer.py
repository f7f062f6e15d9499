"""Timing a few real training steps of a config's backbone and size on this machine (TensorFlow),
for the estimate (``core.training.estimate``). Run by ``python -m core estimate``, never in the app."""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from core.runs.config import TrainConfig
from core.store.workspace import Workspace, utc_now
from core.training import devices
from core.training.estimate import TIMED_STEPS, Estimate, StepTimes, estimate, measured_batch, store_times
from core.training.head import compile_model
from core.training.pipeline import TrainingData, load_pixels

DECODE_SAMPLE = 16  # images timed for the decoding cost


PARTS = 6  # build, head steps, forward, fine-tuning steps, save, decode: what progress counts


def measure(config: TrainConfig, data: TrainingData, progress: Any = None) -> StepTimes:
    """Time the backbone at ``config``'s size on this machine (TensorFlow; seconds to a minute or two), on
    random pixels, and the decoding of a sample of ``data``'s images; ``progress(done, PARTS)`` after each
    part."""
    import keras

    from core.training.callbacks import save_atomic
    from core.training.model import prepare_model, set_unfrozen

    report = progress or (lambda done, total: None)
    batch = measured_batch(config)
    n_classes = len(data.classes)
    devices.enable_memory_growth()
    devices.make_strategy()  # TensorFlow's devices start up here, outside the build's timing (as a run's)
    try:
        started = time.perf_counter()
        prepared = prepare_model(config, data, weights="none")  # timing needs no real weights
        built, plan = prepared.built, prepared.device_plan
        build_s = time.perf_counter() - started
        report(1, PARTS)
        model = built.model
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 255, (batch, config.size, config.size, 3)).astype(np.float32)
        y = np.eye(n_classes, dtype=np.float32)[rng.integers(0, n_classes, batch)]

        def steps() -> tuple[float, float]:
            """The first step (with tracing) and a steady step."""
            first = time.perf_counter()
            model.train_on_batch(x, y)
            first = time.perf_counter() - first
            steady = time.perf_counter()
            for _ in range(TIMED_STEPS):
                model.train_on_batch(x, y)
            return first, (time.perf_counter() - steady) / TIMED_STEPS

        compile_model(model, config.lr, config, plan.jit_compile)
        head_first, head_step = steps()
        report(2, PARTS)
        model.predict_on_batch(x)
        forward = time.perf_counter()
        for _ in range(TIMED_STEPS):
            model.predict_on_batch(x)
        forward_s = (time.perf_counter() - forward) / TIMED_STEPS / batch
        report(3, PARTS)
        set_unfrozen(built, config.unfreeze)
        compile_model(model, config.fine_tune_lr, config, plan.jit_compile)
        fine_first, fine_step = steps()
        report(4, PARTS)
        with tempfile.TemporaryDirectory() as tmp:
            saved = time.perf_counter()
            save_atomic(model, Path(tmp) / "model.keras")
            save_s = time.perf_counter() - saved
        report(5, PARTS)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    head_trace, fine_trace = max(head_first - head_step, 0.0), max(fine_first - fine_step, 0.0)
    decode_s = _decode_seconds(data.train.paths[:DECODE_SAMPLE], config)
    report(6, PARTS)
    return StepTimes(batch, build_s, head_trace, fine_trace, head_step, fine_step, forward_s, save_s, decode_s)


def _decode_seconds(paths: list[str], config: TrainConfig) -> float:
    """Seconds to read, decode and resize one image, over a sample of the dataset's own images."""
    import tensorflow as tf

    if not paths:
        return 0.0
    load_pixels(tf.io.read_file(paths[0]), config.size, config.resize)  # warm up
    started = time.perf_counter()
    for path in paths:
        load_pixels(tf.io.read_file(path), config.size, config.resize)
    return (time.perf_counter() - started) / len(paths)


def measure_and_store(
    ws: Workspace, config: TrainConfig, data: TrainingData, progress: Any = None, contended: bool = False
) -> Estimate:
    """Time ``config``'s shape here, cache the timings, and return the estimate for ``data``.
    ``contended``: a training run was using the machine meanwhile (the timings are then pessimistic)."""
    times = measure(config, data, progress)
    times = replace(times, contended=contended)
    store_times(ws, config, times)
    return estimate(config, data.counts(), times, utc_now())
