"""A run's saved model, loaded only from the workspace's own run folders and with Keras' safe mode.

Keras model files can carry code (Lambda layers); safe mode refuses to run it. Nothing here loads a
file a user uploads: the path comes from the run's row and must lie inside that run's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import PredictionError
from core.store.workspace import Workspace
from core.training import runs


def run_model_path(ws: Workspace, run_id: str) -> Path:
    """The run's ``model.keras``; refuses a run without one, or a path that leaves the run's folder."""
    run = runs.get_run(ws, run_id)
    if not run.model_path:
        raise PredictionError("err.no_model", run=run_id, status=run.status)
    folder = runs.run_dir(ws, run_id).resolve()
    path = (ws.root / run.model_path).resolve()
    if folder not in path.parents or not path.is_file():
        raise PredictionError("err.no_model", run=run_id, status=run.status)
    return path


def load_run_model(ws: Workspace, run_id: str) -> Any:
    """The Keras model of ``run_id`` (TensorFlow is imported here, on first use)."""
    import keras

    import core.training.model  # noqa: F401 - registers the Preprocess layer the file names

    return keras.saving.load_model(run_model_path(ws, run_id), compile=False, safe_mode=True)


LATENCY_CALLS = 10


def latency_ms(predict: Any, batch: Any) -> float:
    """Median milliseconds of ``predict`` on the first item of ``batch`` over LATENCY_CALLS calls, after a
    warm-up call: the one-image latency the export table and the distillation report show."""
    import statistics
    import time

    predict(batch[:1])
    times = []
    for _ in range(LATENCY_CALLS):
        started = time.perf_counter()
        predict(batch[:1])
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 2)
