"""Creating a run and handing it to the queue, so nothing trains in the Streamlit script thread.

Nothing here imports TensorFlow: the app creates and starts runs through this module, the
scheduler (``core.training.scheduler``) starts a worker process (``python -m core worker RUN``)
when it is the run's turn, and the worker does the training.
"""

from __future__ import annotations

from core.store.workspace import Workspace
from core.training import estimate, runs, scheduler
from core.training.config import TrainConfig
from core.training.pipeline import load_training_data


def create_run(ws: Workspace, config: TrainConfig) -> str:
    """Check the dataset can train and record a queued run, with its time estimate when this machine
    has timed the config's shape before; returns its id."""
    data = load_training_data(ws, config.dataset)
    if config.teacher:
        _check_teacher(ws, config, data.classes)
    run_id = runs.insert_run(
        ws,
        dataset_id=data.dataset_id,
        dataset_name=config.dataset,
        version=data.version,
        classes=data.classes,
        config=config.to_dict(),
    )
    guess = estimate.cached_estimate(ws, config, data.counts())
    if guess is not None:
        runs.update_run(ws, run_id, estimate=guess.to_dict())
    return run_id


def _check_teacher(ws: Workspace, config: TrainConfig, classes: list[str]) -> None:
    """A teacher is a run of the same dataset and classes with a saved model."""
    from core.errors import TrainingError

    teacher = runs.get_run(ws, config.teacher)
    if not teacher.model_path or teacher.dataset_name != config.dataset or teacher.classes != classes:
        raise TrainingError("err.teacher_unusable", run=teacher.id, dataset=config.dataset)


def start_run(ws: Workspace, config: TrainConfig) -> str:
    """Queue a run for ``config``; it starts now in a worker process if nothing else trains, else when
    the runs before it in the queue have ended. Returns the run id."""
    run_id = create_run(ws, config)
    scheduler.schedule(ws)
    return run_id


def resume_run(ws: Workspace, run_id: str) -> None:
    """Queue a stopped, failed or interrupted run again; its worker resumes it from its last epoch."""
    scheduler.requeue(ws, run_id)
    scheduler.schedule(ws)
