"""How long a run will take, before it starts: a few real training steps timed on this machine,
times the steps the run plans, plus what the engine does around them.

:func:`measure` (TensorFlow; run by ``python -m core estimate`` in a subprocess from the app) builds
the backbone at the run's size, times its first step (tracing), steady training steps with the base
frozen and with it unfrozen, inference per image and one save. The timings are cached in the
workspace per backbone, size, batch, unfreezing, precision/XLA and device, so the second estimate
for the same shape is instant. :func:`estimate` is plain arithmetic over the timings and the run's
plan, so the Train page computes it without TensorFlow.

What the engine does per run (``core.training.engine``), and what the estimate counts for it:
building the model; per fit, a trace of the train and validation steps; per epoch, the training
steps, a validation pass, a backup checkpoint and (when validation improves) the best model; the
feature cache's one pass over the images when the head trains on features, and one save at the end of
that phase; at the end, reloading the model and predicting validation and test (or, for a head-only
run on features, the head over the cached vectors). Which path a run takes is
``core.training.plan.plan_run``, the function the engine itself follows. Early stopping can only end
it sooner: the estimate is for every planned epoch.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

from core.runs.config import TrainConfig
from core.store.workspace import Workspace
from core.training.devices import cluster_task
from core.training.pipeline import use_memory_cache
from core.training.plan import plan_run
from core.training.store import save_step_timing, step_timing

MEASURE_BATCH_CAP = 16  # timing steps costs real seconds: bigger batches are scaled per image
TIMED_STEPS = 2
# Seconds a run spends outside the timed parts: reading its images' rows, building pipelines,
# reloading the model at the end (measured on tiny runs, where it is most of the time).
FIXED_S = 2.0
# Saves per epoch, in whole-model saves: the backup checkpoint (weights and optimizer, cheaper than a
# model) and the best model when validation improved (most epochs early on, fewer later).
SAVES_PER_EPOCH = 0.5
# Seconds per step of the head alone on cached vectors (a dense layer: Keras' per-step overhead, with
# the callbacks), measured on this project's 2-core machine: 10 epochs of 34 steps in about 4 s.
VECTOR_STEP_S = 0.012


@dataclass(frozen=True)
class StepTimes:
    """Seconds, measured on this machine for one backbone, size and batch (see module docstring)."""

    batch: int
    build_s: float
    head_trace_s: float  # the first step's extra over a steady one (tracing, compiling), base frozen
    fine_trace_s: float  # the same with the top of the base unfrozen
    head_step_s: float  # one batch, base frozen
    fine_step_s: float  # one batch, the top of the base unfrozen as configured
    forward_s: float  # inference, per image
    save_s: float  # one save of the whole model
    decode_s: float = 0.0  # reading, decoding and resizing one of the dataset's images
    contended: bool = False  # measured while a training run used the machine: the times are too long

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Estimate:
    total_s: float
    parts: dict[str, float]  # build, features, head, fine_tune, finish, decode
    measured_at: str
    contended: bool = False  # the timings were measured while a training run used the machine

    def to_dict(self) -> dict[str, Any]:
        return {"total_s": round(self.total_s, 1), "parts": self.parts, "measured_at": self.measured_at,
                "contended": self.contended}  # fmt: skip


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@functools.cache
def device_signature() -> str:
    """This machine as far as speed goes, without importing TensorFlow: CPU cores and GPUs. Asked once
    per process (``nvidia-smi`` is a subprocess; the Train page asks on every rerun)."""
    gpus = ""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "x") != "" and shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
            gpus = out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            gpus = ""
    return f"cpu{usable_cpus()}|{hashlib.sha256(gpus.encode()).hexdigest()[:8] if gpus else 'nogpu'}"


def has_gpu() -> bool:
    return not device_signature().endswith("nogpu")


@functools.cache
def gpu_count() -> int:
    """GPUs a run here will train on (``nvidia-smi -L`` lines), without importing TensorFlow."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "x") == "" or not shutil.which("nvidia-smi"):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    listed = sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
    return min(listed, len(visible.split(","))) if visible else listed


def expected_replicas() -> int:
    """Replicas the engine's strategy will have here: one per GPU when there are several, else one (a
    ``TF_CONFIG`` cluster counts as several: its replicas are not known before it starts)."""

    return 2 if cluster_task() is not None else max(gpu_count(), 1)


def measured_batch(config: TrainConfig) -> int:
    return config.planned_batch if has_gpu() else min(config.planned_batch, MEASURE_BATCH_CAP)


def timing_key(config: TrainConfig) -> str:
    parts = [config.backbone, config.size, measured_batch(config), config.unfreeze, config.mixed_precision,
             config.jit_compile, device_signature()]  # fmt: skip
    return "|".join(str(p) for p in parts)


def cached_times(ws: Workspace, config: TrainConfig) -> tuple[StepTimes, str] | None:
    """The timings of this config's shape on this machine, with when they were measured, if measured."""
    row = step_timing(ws, timing_key(config))
    if row is None:
        return None
    return StepTimes(**json.loads(row[0])), row[1]


def store_times(ws: Workspace, config: TrainConfig, times: StepTimes) -> None:
    save_step_timing(ws, timing_key(config), json.dumps(times.to_dict()))


def estimate(
    config: TrainConfig, counts: dict[str, int], times: StepTimes, measured_at: str = "", replicas: int | None = None
) -> Estimate:
    """Seconds the run will take at most, from its planned epochs and the measured timings.

    ``counts``: images per split (``train``, ``val``, ``test``); ``replicas``: as the engine's strategy
    will have them (this machine's, unless given)."""
    plan = plan_run(config, expected_replicas() if replicas is None else replicas)
    scale = config.planned_batch / times.batch  # per-image cost is close to linear in the batch on a CPU
    train, val, test = counts.get("train", 0), counts.get("val", 0), counts.get("test", 0)
    steps = config.steps_per_epoch or -(-train // config.planned_batch)
    val_s = val * times.forward_s
    saves = SAVES_PER_EPOCH * times.save_s
    parts = {"build": FIXED_S + times.build_s, "features": 0.0, "head": 0.0, "fine_tune": 0.0}
    if config.head_epochs:
        if plan.head_on_features:
            # One pass of the frozen base over the images, then the head on vectors, the model saved once.
            parts["features"] = (train * config.feature_views + val + test) * times.forward_s + times.head_trace_s / 2
            parts["head"] = config.head_epochs * steps * config.feature_views * VECTOR_STEP_S + times.save_s
        else:
            per_epoch = steps * times.head_step_s * scale + val_s + saves
            parts["head"] = times.head_trace_s + config.head_epochs * per_epoch
    if config.fine_tune_epochs:
        per_epoch = steps * times.fine_step_s * scale + val_s + saves
        parts["fine_tune"] = times.fine_trace_s + config.fine_tune_epochs * per_epoch
    # Reloading the saved model and predicting validation and test (a predict function to trace); for a
    # head-only run on features, the head over the cached vectors.
    if plan.finish_from_features:
        parts["finish"] = 0.1
    else:
        parts["finish"] = times.save_s + (val + test) * times.forward_s + times.head_trace_s / 2
    # Decoding: the feature pass reads train, val and test once; the phases on images read train and val
    # once when the decoded pixels fit in memory, else every epoch; the final evaluation reads val and test.
    on_images = config.fine_tune_epochs + (0 if plan.head_on_features else config.head_epochs)
    memory = use_memory_cache(config.cache, train + val, config.size)
    reads = (train + val) * min(on_images, 1 if memory else on_images)
    if plan.head_on_features:
        reads += train + val + test
    if not plan.finish_from_features:
        reads += val + test
    parts["decode"] = reads * times.decode_s
    parts = {k: round(v, 1) for k, v in parts.items()}
    return Estimate(total_s=sum(parts.values()), parts=parts, measured_at=measured_at, contended=times.contended)


def cached_estimate(ws: Workspace, config: TrainConfig, counts: dict[str, int]) -> Estimate | None:
    """The estimate if this machine has timed this config's shape before, else None (measure first)."""
    found = cached_times(ws, config)
    return None if found is None else estimate(config, counts, found[0], found[1])
