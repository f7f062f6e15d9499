"""Where training runs: strategy, mixed precision and XLA, chosen per device and input size."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from typing import Any

# XLA (jit_compile) "auto" means on for GPUs, off for CPUs. Measured on this project's 2-core CPU
# (bench/bench_xla.py, BENCHMARKS.md): one fine-tuning epoch at 32 px, batch 32, Keras' default path
# against jit_compile=True ran ResNet50 77 vs 44 img/s, MobileNetV2-0.35 502 vs 72, VGG16 63 vs 9,
# EfficientNet-B0 162 vs 19. XLA lost for every backbone, so on CPUs it is only on when asked for.


@dataclass(frozen=True)
class Devices:
    strategy: str  # "default", "mirrored", "multi_worker"
    replicas: int
    gpus: int
    mixed_precision: bool
    jit_compile: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _setting(value: str, auto: bool) -> bool:
    return auto if value == "auto" else value == "on"


def enable_memory_growth() -> int:
    """Let TensorFlow take GPU memory as it needs it; returns the number of GPUs."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: growth can no longer change
            pass
    return len(gpus)


def cluster_task() -> tuple[str, int] | None:
    """This process's (task type, index) under a ``TF_CONFIG`` cluster, or None when training alone."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    config = json.loads(raw)
    if not config.get("cluster"):
        return None
    task = config.get("task") or {}
    return str(task.get("type", "worker")), int(task.get("index", 0))


def is_chief() -> bool:
    """The process that writes the run (status, metrics, checkpoints, model): the only one when training
    alone; under a cluster the ``chief`` task, else worker 0 (TensorFlow's own convention)."""
    task = cluster_task()
    if task is None:
        return True
    cluster = json.loads(os.environ["TF_CONFIG"])["cluster"]
    return task[0] == "chief" or (task == ("worker", 0) and "chief" not in cluster)


def make_strategy() -> Any:
    """MultiWorkerMirrored when TF_CONFIG names a cluster, Mirrored over several devices, else default."""
    import tensorflow as tf

    if cluster_task() is not None:
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    cpus = tf.config.list_logical_devices("CPU")
    if not gpus and len(cpus) > 1:
        # Several logical CPUs only exist when someone configured them (tests of this very path).
        return tf.distribute.MirroredStrategy([d.name for d in cpus])
    return tf.distribute.get_strategy()


def plan(strategy: Any, mixed_precision: str, jit_compile: str) -> Devices:
    import tensorflow as tf

    gpus = len(tf.config.list_logical_devices("GPU"))
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):  # class CollectiveAllReduceStrategy
        kind = "multi_worker"
    elif isinstance(strategy, tf.distribute.MirroredStrategy):
        kind = "mirrored"
    else:
        kind = "default"
    return Devices(
        strategy=kind,
        replicas=int(strategy.num_replicas_in_sync),
        gpus=gpus,
        mixed_precision=_setting(mixed_precision, gpus > 0),
        jit_compile=_setting(jit_compile, gpus > 0),
    )


def apply_precision(device_plan: Devices) -> None:
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16" if device_plan.mixed_precision else "float32")


def fresh_keras_state() -> None:
    """Put Keras as a new process has it, between two jobs of one warm worker (``core.jobs.runner.serve_warm``):
    no models or layer names left from the last job, the float32 policy. Seeds are each job's own (every job
    that draws random numbers sets ``keras.utils.set_random_seed`` from its config). Nothing to do where
    Keras was never loaded."""

    if "keras" not in sys.modules:
        return
    import keras

    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
