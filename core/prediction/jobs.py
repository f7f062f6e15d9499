"""The batch prediction job: every image of an uploaded zip, or of one of the dataset's splits, classified
with a run's model in a worker process; the results go to a file the Predict page reads and turns into a
table and a CSV in the reader's language."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from core.datasets.catalog import split_images
from core.errors import PredictionError
from core.jobs.runner import JobContext, JobKind
from core.jobs.store import Job, Resource, spool
from core.prediction.predict import DEFAULT_THRESHOLD, DEFAULT_TOP_K, Prediction, Predictor, predict_zip
from core.runs import store as runs
from core.store.workspace import SPLITS, Workspace


@dataclass(frozen=True)
class BatchJob:
    run: str
    archive: str | None = None  # a zip on disk (an upload spooled to the staging folder) ...
    archive_name: str = ""
    split: str | None = None  # ... or one of the run's dataset's splits
    top_k: int = DEFAULT_TOP_K
    threshold: float = DEFAULT_THRESHOLD
    flip: bool = False  # flip-averaged predictions (test-time augmentation)

    def __post_init__(self) -> None:
        if (self.archive is None) == (self.split is None):
            raise PredictionError("err.batch_source")
        if self.split is not None and self.split not in SPLITS:
            raise PredictionError("err.split_unknown", split=self.split, known=", ".join(SPLITS))

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "archive": self.archive, "archive_name": self.archive_name, "split": self.split,
                "top_k": self.top_k, "threshold": self.threshold, "flip": self.flip}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchJob:
        return cls(**data)


def results_path(ws: Workspace, job_id: int) -> Path:
    """Where a batch job's results are kept (beside its log), after the job has ended."""
    return ws.jobs_dir / f"{job_id}.predictions.json"


def _predict(ctx: JobContext, params: BatchJob) -> dict[str, Any]:

    predictor = Predictor.for_run(ctx.ws, params.run, flip=params.flip)
    if params.archive is not None:
        total = 0  # unknown until the zip is read: progress counts up

        def progress(done: int) -> None:
            ctx.progress(done, max(total, done), "job.predict_images")

        results = predict_zip(predictor, params.archive, params.archive_name, params.top_k, params.threshold, progress)
    else:
        records = split_images(ctx.ws, runs.get_run(ctx.ws, params.run).dataset_name, params.split or "test")
        total = len(records)
        items = ((r.name, r.path.read_bytes()) for r in records)
        results = predictor.predict(
            items, params.top_k, params.threshold, lambda done: ctx.progress(done, total, "job.predict_images")
        )
    path = results_path(ctx.ws, ctx.job.id)
    path.write_text(json.dumps([r.to_stored() for r in results], ensure_ascii=False), encoding="utf-8")
    return {"images": len(results), "failed": sum(1 for r in results if r.error), "file": path.name}


PREDICT_BATCH: JobKind[BatchJob] = JobKind("predict_batch", Resource.LIGHT, BatchJob.from_dict, _predict)


def start_batch(ws: Workspace, run_id: str, *, upload: IO[bytes] | None = None, archive_name: str = "",
                split: str | None = None, top_k: int = DEFAULT_TOP_K, threshold: float = DEFAULT_THRESHOLD,
                flip: bool = False, staged: Path | None = None) -> int:  # fmt: skip
    """Queue a batch prediction of an uploaded zip (spooled to disk, or ``staged`` there already by a
    streamed upload; owned by the job) or of a split; ``flip``: flip-averaged."""
    archive = spool(ws, upload) if upload is not None else staged
    params = BatchJob(run_id, str(archive) if archive else None, archive_name, split, top_k, threshold, flip)
    return PREDICT_BATCH.submit(ws, params, run_id=run_id, owned=(str(archive),) if archive else ())


def batch_results(ws: Workspace, job: Job) -> list[Prediction]:
    """A completed batch job's results."""
    path = results_path(ws, job.id)
    if not path.exists():
        return []
    return [Prediction.from_stored(d) for d in json.loads(path.read_text(encoding="utf-8"))]
