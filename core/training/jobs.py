"""Training's jobs: a run's training, and the three short jobs the Train page runs before one starts (the
time estimate, the augmentation preview, the learning-rate finder). Creating, starting and resuming runs.

Nothing here imports TensorFlow at module level: the app creates and starts runs through this module,
and each handler imports the engine's TensorFlow modules only when a worker process runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import TrainingError
from core.jobs import queue, runner
from core.jobs.runner import JobContext, JobKind, JobResult
from core.jobs.store import JobStatus, Resource, live_jobs
from core.runs import store as runs
from core.runs.config import TrainConfig
from core.runs.store import RunJob
from core.store.workspace import Workspace
from core.training import estimate, lr_sweeps, preview, step_timer
from core.training.lr_finder import find_lr
from core.training.pipeline import TrainingData, load_training_data


@dataclass(frozen=True)
class ConfigJob:
    """A job about a config before any run of it: estimate (``remeasure``), preview, LR sweep (``steps``)."""

    config: TrainConfig
    remeasure: bool = False
    steps: int = 100

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "remeasure": self.remeasure, "steps": self.steps}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConfigJob:
        return cls(TrainConfig.from_dict(data["config"]), bool(data.get("remeasure")), int(data.get("steps", 100)))


def _train(ctx: JobContext, params: RunJob, extra_callbacks: list[Any] | None = None) -> JobResult:
    from core.training.engine import execute

    return execute(ctx, params.run, extra_callbacks)


def _estimate(ctx: JobContext, params: ConfigJob) -> dict[str, Any]:

    config = params.config
    data = load_training_data(ctx.ws, config.dataset)
    found = None if params.remeasure else estimate.cached_estimate(ctx.ws, config, data.counts())
    if found is None:
        training = any(j.resource is Resource.EXCLUSIVE and j.status is JobStatus.RUNNING for j in live_jobs(ctx.ws))
        report = lambda done, total: ctx.progress(done, total, "job.estimate_step")  # noqa: E731
        found = step_timer.measure_and_store(ctx.ws, config, data, report, contended=training)
        return {**found.to_dict(), "measured_now": True}
    return {**found.to_dict(), "measured_now": False}


def _preview(ctx: JobContext, params: ConfigJob) -> dict[str, Any]:
    config = params.config
    path = preview.preview_path(ctx.ws, config)
    if not path.exists():
        from core.training.augment import write_preview

        path = write_preview(ctx.ws, config, lambda done, total: ctx.progress(done, total, "job.preview_step"))
    return {"path": str(path)}


def _lr_find(ctx: JobContext, params: ConfigJob) -> dict[str, Any]:

    config = params.config
    report = lambda done, total: ctx.progress(done, total, "job.lr_step")  # noqa: E731
    sweep = find_lr(ctx.ws, config, steps=params.steps, progress=report)
    path = lr_sweeps.store_sweep(ctx.ws, config, sweep)
    return {"suggestion": sweep.suggestion, "rates": sweep.rates, "losses": sweep.losses, "path": str(path)}


TRAIN: JobKind[RunJob] = JobKind(runs.TRAIN_KIND, runs.TRAIN_RESOURCE, RunJob.from_dict, _train)
ESTIMATE: JobKind[ConfigJob] = JobKind("estimate", Resource.LIGHT, ConfigJob.from_dict, _estimate)
PREVIEW: JobKind[ConfigJob] = JobKind("preview", Resource.LIGHT, ConfigJob.from_dict, _preview)
LR_FIND: JobKind[ConfigJob] = JobKind("lr_find", Resource.LIGHT, ConfigJob.from_dict, _lr_find)
KINDS = (TRAIN, ESTIMATE, PREVIEW, LR_FIND)  # the settings search's job: core.training.tune.TUNE


def plan_key(kind: JobKind[Any], ws: Workspace, config: TrainConfig, data: TrainingData | None = None) -> str:
    """What makes two planning jobs the same (a second click finds the first job instead of a new one):
    the cache their result goes to (``data``: the dataset as the caller already loaded it)."""
    if kind is ESTIMATE:
        return f"{config.dataset}|{estimate.timing_key(config)}"
    if kind is PREVIEW:
        return str(preview.preview_path(ws, config, data))
    return str(lr_sweeps.sweep_path(ws, config, data))


def start_plan_job(
    ws: Workspace, kind: JobKind[ConfigJob], config: TrainConfig, data: TrainingData | None = None, **options: Any
) -> int:
    """Queue an estimate, preview or LR sweep of ``config`` (or find the same one already queued)."""
    return kind.submit(ws, ConfigJob(config, **options), dedupe=plan_key(kind, ws, config, data))


def create_run(ws: Workspace, config: TrainConfig, *, attached: bool = False, held: bool = False) -> str:
    """Check the dataset can train and record a run with its queued training job, with its time estimate
    when this machine has timed the config's shape before; returns its id. ``attached``: this process
    trains it; ``held``: processes started by hand do (a cluster's workers): no worker is started for it."""
    config.check_files()
    data = load_training_data(ws, config.dataset, zero_shot=config.zero_shot)
    if config.teacher:
        teacher = runs.get_run(ws, config.teacher)
        if not teacher.model_path or teacher.dataset_name != config.dataset or teacher.classes != data.classes:
            raise TrainingError("err.teacher_unusable", run=teacher.id, dataset=config.dataset)
    guess = estimate.cached_estimate(ws, config, data.counts())
    return runs.insert_run(
        ws,
        dataset_id=data.dataset_id,
        version=data.version,
        classes=data.classes,
        config=config,
        attached=attached,
        held=held,
        estimate=guess.to_dict() if guess else None,
    )


def start_run(ws: Workspace, config: TrainConfig) -> str:
    """Queue a run for ``config``; it starts now in a worker process if nothing else trains, else when
    the runs before it in the queue have ended. Returns the run id."""
    run_id = create_run(ws, config)
    queue.schedule(ws)
    return run_id


def resume_run(ws: Workspace, run_id: str) -> int:
    """Queue a stopped, failed, interrupted or cancelled run again; its worker resumes it from its last
    epoch. Returns the new job's id."""
    job_id = runs.requeue(ws, run_id)
    queue.schedule(ws)
    return job_id


def train_here(ws: Workspace, config: TrainConfig, extra_callbacks: list[Any] | None = None) -> runs.Run:
    """Create a run for ``config`` and train it in this process now (tests and benchmarks; the command
    line's ``train`` waits for its turn in the queue instead). ``extra_callbacks`` join the engine's."""
    return resume_here(ws, create_run(ws, config, attached=True), extra_callbacks)


def resume_here(ws: Workspace, run_id: str, extra_callbacks: list[Any] | None = None) -> runs.Run:
    """Train ``run_id`` in this process now, as its queued job or (a stopped, failed, interrupted or
    cancelled run) a new one; returns the run as stored afterwards."""
    run = runs.get_run(ws, run_id)
    job_id = run.job.id if run.status is JobStatus.QUEUED else runs.requeue(ws, run_id, attached=True)
    kind = JobKind(TRAIN.name, TRAIN.resource, TRAIN.params, lambda ctx, p: _train(ctx, p, extra_callbacks))
    runner.execute(ws, job_id, kind)
    return runs.get_run(ws, run_id)
