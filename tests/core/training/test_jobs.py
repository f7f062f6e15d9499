"""Training's jobs (core.training.jobs), each killed, cancelled and completed: a run through real worker
processes (the exclusive job's mechanism); the time estimate, the augmentation preview and the
learning-rate finder through the same runner in this process (tests.jobs.lifecycle_here)."""

import pytest

from core.datasets.ingest import import_archive
from core.jobs.store import JobStatus
from core.runs import store as runs
from core.runs.config import TrainConfig
from core.store.workspace import Workspace
from core.training import estimate, lr_sweeps, preview
from core.training.jobs import ESTIMATE, LR_FIND, PREVIEW, resume_run, start_plan_job, start_run
from tests.builders import make_zip, separable, tiny_config
from tests.jobs import lifecycle, lifecycle_here, wait_for

pytestmark = pytest.mark.slow  # worker processes with TensorFlow


@pytest.fixture
def ws(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    import_archive(
        ws, make_zip(tmp_path / "c.zip", separable({"红": (200, 60, 60), "蓝": (60, 60, 200)}, 12)), name="c"
    )
    return ws


def tiny(**overrides) -> TrainConfig:
    base = dict(dataset="c", batch_size=4, head_epochs=2, fine_tune_epochs=1, early_stopping=0, feature_cache=False)
    return tiny_config(**{**base, **overrides})


def test_a_training_run_killed_resumes_stopped_keeps_its_model_and_completes(ws, monkeypatch):
    started = []

    def start(n: int) -> int:
        started.append(start_run(ws, tiny(seed=n)))
        return runs.get_run(ws, started[-1]).job.id

    lifecycle(ws, start, monkeypatch, when_cancelled=JobStatus.STOPPED, together=False)
    killed, stopped, completed = (runs.get_run(ws, r) for r in started)
    assert killed.status is JobStatus.INTERRUPTED and stopped.status is JobStatus.STOPPED
    assert stopped.model_path and (ws.root / stopped.model_path).is_file()  # a stopped run keeps its best model
    assert completed.status is JobStatus.COMPLETED and completed.epochs_run == 3 and completed.final
    job = runs.get_run(ws, killed.id).job.id
    resume_run(ws, killed.id)  # an interrupted run resumes as a new job, from its last epoch
    resumed = wait_for(ws, runs.get_run(ws, killed.id).job.id, lambda j: not j.live)
    assert resumed.id != job and resumed.status is JobStatus.COMPLETED
    assert runs.get_run(ws, killed.id).epochs_run == 3


def test_the_estimate_preview_and_lr_finder_jobs(ws, monkeypatch):
    data_counts = {"train": 16, "val": 4, "test": 4}
    for kind, config_for, check in (
        (ESTIMATE, lambda n: tiny(seed=n, batch_size=4 + n), lambda c, r: estimate.cached_estimate(ws, c, data_counts)),
        (PREVIEW, lambda n: tiny(seed=n, augment="strong"), lambda c, r: preview.preview_path(ws, c).exists()),
        (LR_FIND, lambda n: tiny(seed=n, feature_cache=True), lambda c, r: lr_sweeps.cached_sweep(ws, c)),
    ):
        configs = []

        def start(n: int, kind=kind, config_for=config_for, configs=configs) -> int:
            configs.append(config_for(n))
            return start_plan_job(ws, kind, configs[-1], **({"steps": 30} if kind is LR_FIND else {}))

        done = lifecycle_here(ws, start, monkeypatch)
        assert check(configs[2], done.result), kind.name  # the completed one's result is cached for the page
        assert not check(configs[1], None), kind.name  # the cancelled one left nothing half-made
