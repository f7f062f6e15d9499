"""Each run's stored predictions: for every image of a split, its id, true class and class probabilities.

The worker writes them when a run ends, with the run's saved model (the one model the app shows,
evaluates, serves and exports; ``core.training.inference``); the Evaluate page and
``python -m core evaluate`` read them here with numpy alone, so metrics need neither TensorFlow nor a
model load, and every place shows the same numbers. A run's final figures (accuracy, log loss) are these
predictions' :attr:`SplitPredictions.accuracy` and :attr:`SplitPredictions.log_loss`: one definition.

File: :attr:`RunFolder.predictions`, per split ``<split>_ids`` (int64), ``<split>_labels`` (int32,
indices into the run's classes) and ``<split>_probs`` (float32, images x classes); the same with the
prefix ``flip_`` for the flip-averaged predictions (test-time augmentation: each image's probabilities
averaged with its mirror image's, ``core.training.model.flip_averaged``), computed on request.
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


def _key(split: str, flip: bool) -> str:
    return f"flip_{split}" if flip else split


def stored_splits(ws: Workspace, run_id: str, flip: bool = False) -> list[str]:
    """The splits whose predictions (``flip``: flip-averaged ones) are stored for ``run_id``."""
    path = RunFolder.of(ws, run_id).predictions
    if not path.exists():
        return []
    with np.load(path) as data:
        return [s for s in (*SPLITS, UNLABELED) if f"{_key(s, flip)}_probs" in data.files]


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


def load_predictions(ws: Workspace, run_id: str, split: str, flip: bool = False) -> SplitPredictions:
    """A split's stored predictions (``flip``: flip-averaged); :class:`EvaluationError` if never computed."""
    run = get_run(ws, run_id)
    path = RunFolder.of(ws, run_id).predictions
    if split not in stored_splits(ws, run_id, flip):
        raise EvaluationError("err.no_flip_predictions" if flip else "err.no_predictions", run=run_id, split=split)
    key = _key(split, flip)
    with np.load(path) as data:
        return SplitPredictions(split, run.classes, data[f"{key}_ids"], data[f"{key}_labels"], data[f"{key}_probs"])


def flip_helps(ws: Workspace, run_id: str) -> bool | None:
    """Whether flip-averaging improves the run on its validation images (higher accuracy, or the same and a
    lower log loss); None until both kinds of validation predictions are stored. Export offers flip-averaged
    models only where it helps."""
    if "val" not in stored_splits(ws, run_id) or "val" not in stored_splits(ws, run_id, flip=True):
        return None
    plain, flipped = load_predictions(ws, run_id, "val"), load_predictions(ws, run_id, "val", flip=True)
    if not len(plain):
        return None
    return (flipped.accuracy, -flipped.log_loss) > (plain.accuracy, -plain.log_loss)


def save_predictions(ws: Workspace, run_id: str, found: dict[str, SplitPredictions], flip: bool = False) -> None:
    """Add or replace splits in the run's file (``flip``: their flip-averaged predictions), atomically (a
    reader never sees half a file)."""
    path = RunFolder.of(ws, run_id).predictions
    arrays: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
    for split, p in found.items():
        key = _key(split, flip)
        if not flip:  # new predictions of a split (a new model): its flip-averaged ones are no longer its own
            arrays = {k: v for k, v in arrays.items() if not k.startswith(f"{_key(split, True)}_")}
        arrays.update(
            {
                f"{key}_ids": np.asarray(p.ids, dtype=np.int64),
                f"{key}_labels": np.asarray(p.labels, dtype=np.int32),
                f"{key}_probs": np.asarray(p.probs, dtype=np.float32),
            }
        )
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
