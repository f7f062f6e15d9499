"""The predictions job: a run's stored predictions computed with its saved model, for a run saved before
they were stored, for the train split on request, or for the unlabeled images (the Label page's
suggestions). A light job: it runs beside a training run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import EvaluationError
from core.jobs.runner import JobContext, JobKind
from core.jobs.store import Resource
from core.runs.predictions import UNLABELED
from core.store.vocabulary import EVALUATED_SPLITS
from core.store.workspace import SPLITS, Workspace
from core.training.inference import predict_splits


@dataclass(frozen=True)
class PredictionsJob:
    run: str
    splits: tuple[str, ...] = EVALUATED_SPLITS
    flip: bool = False  # flip-averaged predictions (test-time augmentation), stored beside the plain ones

    def __post_init__(self) -> None:
        for split in self.splits:
            if split not in (*SPLITS, UNLABELED):
                raise EvaluationError("err.split_unknown", split=split, known=", ".join((*SPLITS, UNLABELED)))

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "splits": list(self.splits), "flip": self.flip}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PredictionsJob:
        return cls(str(data["run"]), tuple(data.get("splits") or EVALUATED_SPLITS), bool(data.get("flip")))


def _predict(ctx: JobContext, params: PredictionsJob) -> dict[str, Any]:

    def progress(split: str, done: int, total: int) -> None:
        ctx.progress(done, total, "job.predictions_split", split=split)

    found = predict_splits(ctx.ws, params.run, params.splits, progress=progress, flip=params.flip)
    return {"run": params.run, "splits": {split: len(p) for split, p in found.items()}}


PREDICTIONS: JobKind[PredictionsJob] = JobKind("predictions", Resource.LIGHT, PredictionsJob.from_dict, _predict)


def start_predictions(ws: Workspace, run_id: str, splits: tuple[str, ...], flip: bool = False) -> int:
    """Queue the predictions of ``splits`` for a run (``flip``: flip-averaged), or find the same job already
    queued or running."""
    dedupe = f"{run_id}|{','.join(splits)}{'|flip' if flip else ''}"
    return PREDICTIONS.submit(ws, PredictionsJob(run_id, splits, flip), run_id=run_id, dedupe=dedupe)
