"""Each run's stored predictions: for every image of a split, its id, true class and class probabilities.

The worker writes them when a run ends, with the run's saved model (the one model the app shows,
evaluates, serves and exports; ``core.training.inference``); the Evaluate page and
``python -m core evaluate`` read them here with numpy alone, so metrics need neither TensorFlow nor a
model load, and every place shows the same numbers. A run's final figures (accuracy, log loss) are these
predictions' :attr:`SplitPredictions.accuracy` and :attr:`SplitPredictions.log_loss`: one definition.

File: :attr:`RunFolder.predictions`, per split ``<split>_ids`` (int64), ``<split>_labels`` (int32,
indices into the run's classes) and ``<split>_probs`` (float32, images x classes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from core.errors import EvaluationError
from core.runs.folder import RunFolder
from core.runs.store import get_run
from core.store.workspace import SPLITS, Workspace

UNLABELED = "unlabeled"  # the dataset's images without a label: the model's suggestions (labels are -1)
# Probabilities are clipped to this before a logarithm (float32's machine epsilon, as scikit-learn does).
EPSILON = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class SplitPredictions:
    split: str
    classes: list[str]
    ids: np.ndarray
    labels: np.ndarray
    probs: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(axis=1) if len(self) else np.zeros(0, dtype=np.int64)

    @property
    def accuracy(self) -> float:
        """Share of images whose most probable class is their label."""
        return float((self.predicted == self.labels).mean()) if len(self) else 0.0

    @property
    def log_loss(self) -> float:
        """Mean negative log-probability of the true class (cross-entropy, no label smoothing)."""
        if not len(self):
            return 0.0
        true = self.probs[np.arange(len(self)), self.labels]
        return float(-np.log(np.clip(true, EPSILON, 1.0)).mean())


def stored_splits(ws: Workspace, run_id: str) -> list[str]:
    """The splits whose predictions are stored for ``run_id``."""
    path = RunFolder.of(ws, run_id).predictions
    if not path.exists():
        return []
    with np.load(path) as data:
        return [s for s in (*SPLITS, UNLABELED) if f"{s}_probs" in data.files]


def first_split_with_images(ws: Workspace, run_id: str) -> str:
    """The split a page opens on: test, else validation, else train, the first whose stored predictions
    hold any image (a dataset without a test split opens on validation); test when none is stored yet."""
    path = RunFolder.of(ws, run_id).predictions
    if path.exists():
        with np.load(path) as data:
            for split in ("test", "val", "train"):
                if f"{split}_ids" in data.files and len(data[f"{split}_ids"]):
                    return split
    return "test"


def load_predictions(ws: Workspace, run_id: str, split: str) -> SplitPredictions:
    """A split's stored predictions; :class:`EvaluationError` if they were never computed."""
    run = get_run(ws, run_id)
    path = RunFolder.of(ws, run_id).predictions
    if split not in stored_splits(ws, run_id):
        raise EvaluationError("err.no_predictions", run=run_id, split=split)
    with np.load(path) as data:
        return SplitPredictions(
            split, run.classes, data[f"{split}_ids"], data[f"{split}_labels"], data[f"{split}_probs"]
        )


def save_predictions(ws: Workspace, run_id: str, found: dict[str, SplitPredictions]) -> None:
    """Add or replace splits in the run's file, atomically (a reader never sees half a file)."""
    path = RunFolder.of(ws, run_id).predictions
    arrays: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
    for split, p in found.items():
        arrays.update(
            {
                f"{split}_ids": np.asarray(p.ids, dtype=np.int64),
                f"{split}_labels": np.asarray(p.labels, dtype=np.int32),
                f"{split}_probs": np.asarray(p.probs, dtype=np.float32),
            }
        )
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
