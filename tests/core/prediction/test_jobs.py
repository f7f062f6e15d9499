"""The batch prediction job (core.prediction.jobs) through real worker processes: killed, cancelled,
completed; a zip given from the app is spooled, owned by its job and removed with it."""

import pytest

from core.jobs import launcher, runner
from core.jobs.store import JobStatus
from core.prediction.jobs import PREDICT_BATCH, batch_results, start_batch
from core.store.workspace import Workspace
from tests.builders import TWO_COLOURS, make_zip, separable, trained_colour_run
from tests.jobs import lifecycle_here

pytestmark = pytest.mark.slow  # a trained model


def test_a_batch_prediction_as_a_job(tmp_path, monkeypatch):
    ws = Workspace.open(tmp_path / "ws")
    run = trained_colour_run(ws, tmp_path, TWO_COLOURS, 30, "c")
    done = lifecycle_here(ws, lambda n: start_batch(ws, run.id, split="train", top_k=2), monkeypatch)  # two batches
    results = batch_results(ws, done)
    assert len(results) == done.result["images"] == 44 and all(len(r.top) == 2 for r in results)
    images = dict(separable(TWO_COLOURS, 32))
    archive = make_zip(tmp_path / "new.zip", [("新/红.png", images["红/31.png"]), ("说明.txt", b"x")])
    monkeypatch.setenv(launcher.ENV_VAR, "true")  # this process runs it, through the worker's runner
    with open(archive, "rb") as upload:
        job_id = start_batch(ws, run.id, upload=upload, archive_name="new.zip")
    job = runner.execute(ws, job_id, PREDICT_BATCH)
    assert job.status is JobStatus.COMPLETED
    by_name = {r.image: r for r in batch_results(ws, job)}
    assert by_name["新/红.png"].top[0][0] == "红" and by_name["说明.txt"].error
    assert list(ws.staging_dir.iterdir()) == []  # the spooled upload went with its job
