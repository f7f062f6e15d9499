"""The training loop's only channels to the outside world: Keras callbacks."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from core.runs import store as runs
from core.store.workspace import Workspace

# Seconds between two per-batch metric writes: live curves without a database write per batch.
BATCH_WRITE_INTERVAL_S = 1.0


def _lr(model: Any) -> float:
    try:
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except (AttributeError, TypeError, ValueError):
        return float("nan")


class RunReporter(keras.callbacks.Callback):
    """Writes per-batch (throttled) and per-epoch metrics, speed and ETA to the run's store."""

    def __init__(
        self,
        ws: Workspace,
        run_id: str,
        phase: str,
        steps_per_epoch: int,
        epochs: int,
        batch_size: int,
        epoch_offset: int,
        progress: Callable[[int, str], None] | None = None,
    ) -> None:
        super().__init__()
        self.progress = progress  # (epochs done in the run, phase): the training job's progress
        self.ws, self.run_id, self.phase = ws, run_id, phase
        self.steps_per_epoch, self.epochs, self.batch_size = steps_per_epoch, epochs, batch_size
        self.epoch_offset = epoch_offset  # epochs of earlier phases, so epochs count across the run
        self.epoch = 0
        self.started = time.perf_counter()
        self.steps_done = 0
        self.last_write = 0.0
        self.batch_in_epoch = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.started = time.perf_counter()
        self.steps_done = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def _timing(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.started
        per_step = elapsed / max(self.steps_done, 1)
        total_steps = self.steps_per_epoch * self.epochs
        remaining = max(total_steps - (self.epoch * self.steps_per_epoch + self.batch_in_epoch), 0)
        return {
            "images_per_s": round(self.batch_size / per_step, 2) if self.steps_done else 0.0,
            "elapsed_s": round(elapsed, 2),
            "eta_s": round(remaining * per_step, 1),
        }

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.steps_done += 1
        self.batch_in_epoch = batch + 1
        if self.progress:
            self.progress(self.epoch_offset + self.epoch, self.phase)
        now = time.perf_counter()
        if now - self.last_write < BATCH_WRITE_INTERVAL_S:
            return
        self.last_write = now
        values = {k: float(v) for k, v in (logs or {}).items()}
        values.update(lr=_lr(self.model), **self._timing())
        runs.record_metrics(self.ws, self.run_id, "batch", self.phase, self.epoch_offset + self.epoch, batch, values)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.batch_in_epoch = self.steps_per_epoch
        values = {k: float(v) for k, v in (logs or {}).items()}
        values.update(lr=_lr(self.model), **self._timing())
        runs.record_metrics(
            self.ws, self.run_id, "epoch", self.phase, self.epoch_offset + epoch, self.steps_per_epoch, values
        )
        if self.progress:
            self.progress(self.epoch_offset + epoch + 1, self.phase)


class StopFlag(keras.callbacks.Callback):
    """Stops gracefully at the end of the current batch once someone asked the run's job to stop
    (``should_stop``: the job's stop request, seen by its heartbeat)."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        super().__init__()
        self.should_stop = should_stop
        self.stopped = False

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.should_stop():
            self.stopped = True
            self.model.stop_training = True


class Deadline(keras.callbacks.Callback):
    """Ends training at the end of the batch that passes ``deadline`` (``time.monotonic()``), as early
    stopping does: the run completes with the best model so far. None: no limit."""

    def __init__(self, deadline: float | None) -> None:
        super().__init__()
        self.deadline = deadline
        self.reached = False

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.reached = True
            self.model.stop_training = True


class NanGuard(keras.callbacks.Callback):
    """Stops the run when the loss becomes NaN or infinite, remembering where."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0
        self.where: tuple[int, int] | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.where = (self.epoch, batch)
            self.model.stop_training = True


class BestCheckpoint(keras.callbacks.Callback):
    """The run's one model: whenever validation loss beats the best so far in the run (both phases, and
    across a resume, since ``best`` starts from what the run recorded), save the model atomically and
    record that epoch's figures as the run's. The saved model is the one the app evaluates, serves and
    exports, so the figures shown for a run are always that model's.

    One per phase, made by the engine with what it needs: the run's best loss so far, ``record`` (stores
    figures as the run's), the phase and its first epoch in the run, and ``save``. In the feature-cache
    phase the fitted model is the head alone: ``save`` keeps the head's weights in memory and ``hold`` is
    set, so the figures wait in ``held`` until the engine has written the full model at the phase's end and
    records them. Afterwards the engine reads ``best`` (the run's best loss now), ``saved`` and ``held``.
    """

    def __init__(
        self,
        best: float,
        record: Callable[[dict[str, Any]], None],
        *,
        phase: str,
        epoch_offset: int,
        save: Callable[[], None],
        hold: bool = False,
    ) -> None:
        super().__init__()
        self.best = best
        self.record = record
        self.save = save
        self.phase = phase
        self.epoch_offset = epoch_offset
        self.hold = hold
        self.held: dict[str, Any] | None = None
        self.saved = False  # a model was written (hold: only kept in memory) in this phase

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        val_loss = logs.get("val_loss")
        if val_loss is None or not math.isfinite(val_loss) or not val_loss < self.best:
            return
        self.best = float(val_loss)
        self.save()
        self.saved = not self.hold
        # ``val_objective``: the loss the run minimises (label smoothing or distillation included), not the
        # plain log loss the run's final figures report (``val_log_loss``); see ``core.runs.store.Run``.
        figures: dict[str, Any] = {"val_objective": self.best}
        if "val_accuracy" in logs:
            figures["val_accuracy"] = float(logs["val_accuracy"])
        figures = {**figures, "epoch": self.epoch_offset + epoch, "phase": self.phase}
        if self.hold:
            self.held = figures
        else:
            self.record(figures)


def save_atomic(model: Any, path: Path) -> None:
    """Save to a temporary file beside ``path``, then rename: a reader never sees half a model."""
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    model.save(tmp)
    os.replace(tmp, path)
