"""The best model in N minutes: a budgeted search of the head's settings, then the best candidate as an
ordinary run.

A tune is a job (``TUNE``, exclusive: it trains). Within its budget it

1. extracts the base's features once (the feature cache the run will find again), timing the base's
   forward pass on this machine;
2. plans: the final run needs its start-up and finish (:data:`FINAL_OVERHEAD_S`) and its fine-tuning
   epochs (the time estimate's timings when this machine has measured them, else three forward passes
   per training image, the advice's rule); the search gets :data:`SEARCH_SHARE` of the rest;
3. searches the head's settings on the cached vectors (learning rate, dropout, label smoothing, weight
   decay, head epochs) with Optuna's TPE sampler, the recipe's own settings as the first trial, each
   trial scored by the plain validation log loss of a head trained as the engine trains it
   (``core.training.head``); trials are stored as they end (``tune_trials``) so the Train page shows
   them live;
4. records the best settings as a run, queued first (or, from the command line, attached), with
   fine-tuning epochs that fit the time left and a time limit (``max_minutes``) as the safety net, so
   the whole tune ends within its budget. That run is an ordinary run: evaluate, predict and export it
   as any other.

A trial whose training fails (a NaN loss, a setting that cannot train) is stored as failed with its
reason and the search goes on; a cancel ends the search at the next trial and creates no run.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from core.errors import ConfigError, TrainingError
from core.i18n import stored
from core.jobs import queue
from core.jobs.runner import JobContext, JobKind
from core.jobs.store import Resource
from core.runs import store as runs
from core.runs.config import FINE_TUNE_RATE_RATIO, Planning, TrainConfig
from core.store.workspace import Workspace
from core.training.advice import advise_dataset
from core.training.estimate import VECTOR_STEP_S
from core.training.head import fit_head_on_vectors
from core.training.jobs import create_run
from core.training.pipeline import load_training_data
from core.training.presets import preset_values
from core.training.store import save_trial, trial_rows

# Of the time left once the features are extracted (less the final run's overhead), the share the search
# gets; the rest fine-tunes the best candidate (measured on clothing-small: BENCHMARKS.md, bench_tune).
SEARCH_SHARE = 0.2
# Seconds the final run spends outside its training time: starting Python and TensorFlow, building the
# model, loading the cached features, the final predictions (a whole `python -m core train` call with the
# cache found took 13 s at 224 px here: BENCHMARKS.md's feature-cache table).
FINAL_OVERHEAD_S = 25.0
MIN_BUDGET_S = 60.0
MAX_FINE_TUNE_EPOCHS = 30
# The search space (the recipe's own values are the first trial).
SPACE = {
    "lr": (1e-4, 3e-2),
    "dropout": (0.0, 0.6),
    "label_smoothing": (0.0, 0.2),
    "weight_decay": (1e-6, 3e-2),  # log scale; the recipe's 0 is the first trial
    "head_epochs": (5, 40),
}
TUNED = tuple(SPACE)


@dataclass(frozen=True)
class TuneJob:
    """Search the head's settings for ``dataset`` within ``budget_s`` seconds, the final run included.
    ``attach_run``: the caller trains the final run itself (the command line), else it is queued first."""

    dataset: str
    budget_s: float
    seed: int = 0
    attach_run: bool = False

    def __post_init__(self) -> None:
        if not self.budget_s >= MIN_BUDGET_S:
            raise ConfigError("err.tune_budget", budget=round(self.budget_s), least=round(MIN_BUDGET_S))

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "budget_s": self.budget_s, "seed": self.seed, "attach_run": self.attach_run}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TuneJob:
        return cls(str(data["dataset"]), float(data["budget_s"]), int(data.get("seed", 0)),
                   bool(data.get("attach_run", False)))  # fmt: skip


def parse_budget(text: str) -> float:
    """Seconds in ``"10m"``, ``"90s"``, ``"1h"``, ``"1h30m"`` or a bare number of minutes."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value) * 60
    parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?:in)?)?(?:(\d+(?:\.\d+)?)s)?", value)
    if not value or parts is None or not any(parts.groups()):
        raise ConfigError("err.tune_budget_format", value=text)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in parts.groups())
    return hours * 3600 + minutes * 60 + seconds


def base_config(ws: Workspace, dataset: str, seed: int = 0, data: Any = None) -> TrainConfig:
    """The balanced recipe as advised for the dataset on this machine: what the search starts from."""

    values = preset_values("balanced", advise_dataset(ws, dataset, data).values())
    # the search plans its own size and epochs: its final run is exactly what it chose
    values.update(planning=Planning.FIXED, max_minutes=0.0)
    return TrainConfig(**{**values, "dataset": dataset, "seed": seed})


@dataclass(frozen=True)
class Trial:
    number: int
    params: dict[str, Any]
    state: str  # complete or failed
    val_log_loss: float | None
    val_accuracy: float | None
    seconds: float
    error: dict[str, Any] | None = None


def list_trials(ws: Workspace, job_id: int) -> list[Trial]:
    """The trials of tune job ``job_id`` so far, in order."""
    rows = trial_rows(ws, job_id)
    return [Trial(r[0], json.loads(r[1]), r[2], r[3], r[4], r[5], json.loads(r[6]) if r[6] else None) for r in rows]


def _record(ws: Workspace, job_id: int, trial: Trial) -> None:
    save_trial(ws, (job_id, trial.number, json.dumps(trial.params), trial.state, trial.val_log_loss,
                    trial.val_accuracy, trial.seconds, json.dumps(trial.error) if trial.error else None))  # fmt: skip


def _sample(trial: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (low, high) in SPACE.items():
        if isinstance(low, int):
            out[name] = trial.suggest_int(name, low, high)
        else:
            out[name] = trial.suggest_float(name, low, high, log=name in ("lr", "weight_decay"))
    return out


class TrialFailed(ValueError):
    """A trial that gives no score: ``key`` says why (its loss became NaN, the search's deadline cut it)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _search(ctx: JobContext, params: TuneJob) -> dict[str, Any]:
    import keras
    import optuna

    from core.training import features
    from core.training.callbacks import Deadline, NanGuard
    from core.training.measured_plan import fine_tune_epoch_s, forward_s, val_scores
    from core.training.model import prepare_model

    started = time.monotonic()
    deadline = started + params.budget_s
    ws = ctx.ws
    data = load_training_data(ws, params.dataset)
    config = base_config(ws, params.dataset, params.seed, data)
    ctx.progress(0, int(params.budget_s), "job.tune_features")
    prepared = prepare_model(config, data)
    plan, built = prepared.device_plan, prepared.built
    feats = features.load_or_build(ws, config, data, built.model, prepared.memory_cache)
    epoch_s = fine_tune_epoch_s(ws, config, data, forward_s(built.model))
    search_s = max(SEARCH_SHARE * (deadline - time.monotonic() - FINAL_OVERHEAD_S), 0.0)
    search_end = time.monotonic() + search_s

    sampler = optuna.samplers.TPESampler(seed=params.seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.enqueue_trial({"lr": config.lr, "dropout": config.dropout, "label_smoothing": config.label_smoothing,
                         "weight_decay": SPACE["weight_decay"][0], "head_epochs": config.head_epochs})  # fmt: skip
    n_classes = len(data.classes)
    weights = data.class_weights() if config.class_weights == "auto" else None
    number = 0
    while number == 0 or time.monotonic() < search_end:  # the recipe's own settings are always scored
        ctx.progress(int(time.monotonic() - started), int(params.budget_s), "job.tune_trial", trial=number + 1)
        trial = study.ask()
        values = _sample(trial)
        trial_config = TrainConfig(**{**config.to_dict(), **values})
        began = time.monotonic()
        keras.backend.clear_session()
        # The first trial (the recipe) is never cut: however slow the machine, the search has a scored
        # candidate and the tune ends with a run (it costs one head fit on cached vectors, seconds).
        nan, cut = NanGuard(), Deadline(search_end if number else None)
        stopping = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.early_stopping, restore_best_weights=True
        )
        try:
            head = fit_head_on_vectors(feats, trial_config, n_classes, plan.jit_compile,
                                       [nan, cut, stopping], weights)  # fmt: skip
            if nan.where is not None:
                raise TrialFailed("err.tune_trial_nan")
            if cut.reached:  # not the settings it was asked to try: no score for them
                raise TrialFailed("err.tune_trial_cut")
            log_loss, accuracy = val_scores(head, feats)
            if not math.isfinite(log_loss):
                raise TrialFailed("err.tune_trial_nan")
        except TrialFailed as exc:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            error = stored(exc.key)
            _record(ws, ctx.job.id, Trial(number, values, "failed", None, None, time.monotonic() - began, error))
        else:
            trial.set_user_attr("val_accuracy", accuracy)
            study.tell(trial, log_loss)
            _record(ws, ctx.job.id, Trial(number, values, "complete", log_loss, accuracy, time.monotonic() - began))
        number += 1
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise TrainingError("err.tune_no_trial", budget=round(params.budget_s))
    best = study.best_trial
    final = _final_config(config, best.params, deadline - time.monotonic(), epoch_s, len(data.train))
    ctx.progress(int(time.monotonic() - started), int(params.budget_s), "job.tune_run")
    return _record_run(ws, params, final, best, number, epoch_s, time.monotonic() - started)


def _final_config(
    config: TrainConfig, best: dict[str, Any], left_s: float, epoch_s: float, n_train: int
) -> TrainConfig:
    """The recipe with the best head settings, fine-tuning epochs that fit ``left_s`` and a time limit."""
    train_s = max(left_s - FINAL_OVERHEAD_S, 0.0)

    head_s = best["head_epochs"] * math.ceil(n_train / config.planned_batch) * VECTOR_STEP_S
    epochs = int(max(train_s - head_s, 0.0) // max(epoch_s, 1e-3))
    epochs = min(epochs, MAX_FINE_TUNE_EPOCHS)
    values = {name: best[name] for name in TUNED}
    values["fine_tune_lr"] = best["lr"] / FINE_TUNE_RATE_RATIO  # the recipe's ratio
    return TrainConfig(**{**config.to_dict(), **values, "fine_tune_epochs": epochs,
                          "max_minutes": max(train_s / 60, 0.25)})  # fmt: skip


def _record_run(ws: Workspace, params: TuneJob, final: TrainConfig, best: Any, trials: int, epoch_s: float,
                seconds: float) -> dict[str, Any]:  # fmt: skip

    run_id = create_run(ws, final, attached=params.attach_run)
    if not params.attach_run:
        queue.to_front(ws, runs.get_run(ws, run_id).job.id)
    return {"run": run_id, "best": {k: best.params[k] for k in TUNED}, "best_val_log_loss": best.value,
            "best_val_accuracy": best.user_attrs.get("val_accuracy"), "trials": trials,
            "fine_tune_epochs": final.fine_tune_epochs, "fine_tune_epoch_s": round(epoch_s, 1),
            "search_s": round(seconds, 1)}  # fmt: skip


TUNE = JobKind("tune", Resource.EXCLUSIVE, TuneJob.from_dict, _search)


def start_tune(ws: Workspace, dataset: str, budget_s: float, seed: int = 0) -> int:
    """Queue a settings search for ``dataset`` within ``budget_s`` (the app); returns the job's id."""
    base_config(ws, dataset, seed)  # fails here, in the caller, when the dataset cannot train
    return TUNE.submit(ws, TuneJob(dataset, budget_s, seed), dedupe=f"tune|{dataset}")
