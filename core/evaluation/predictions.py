"""Each run's stored predictions: for every image of a split, its id, true class and class probabilities.

The worker writes them when a run ends, with the run's saved model (the one model the app shows,
evaluates, serves and exports); the Evaluate page and ``python -m core evaluate`` read them with
numpy alone, so metrics need neither TensorFlow nor a model load, and every place shows the same
numbers. Runs saved before predictions were stored get theirs on first use (:func:`predict_splits`).

File: ``runs/<id>/predictions.npz``, per split ``<split>_ids`` (int64), ``<split>_labels`` (int32,
indices into the run's classes) and ``<split>_probs`` (float32, images x classes).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import EvaluationError
from core.store.workspace import Workspace
from core.training import runs

PREDICTIONS_FILE = "predictions.npz"
PROGRESS_FILE = "predictions.progress.json"
SPLITS = ("test", "val", "train")
UNLABELED = "unlabeled"  # the dataset's images without a label: the model's suggestions (labels are -1)
# Images per prediction batch: large enough to keep a CPU busy, small enough for 224 px on a laptop.
PREDICT_BATCH = 32


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


def predictions_path(ws: Workspace, run_id: str) -> Path:
    return runs.run_dir(ws, run_id) / PREDICTIONS_FILE


def stored_splits(ws: Workspace, run_id: str) -> list[str]:
    """The splits whose predictions are stored for ``run_id``."""
    path = predictions_path(ws, run_id)
    if not path.exists():
        return []
    with np.load(path) as data:
        return [s for s in (*SPLITS, UNLABELED) if f"{s}_probs" in data.files]


def load_predictions(ws: Workspace, run_id: str, split: str) -> SplitPredictions:
    """A split's stored predictions; :class:`EvaluationError` if they were never computed."""
    run = runs.get_run(ws, run_id)
    path = predictions_path(ws, run_id)
    if split not in stored_splits(ws, run_id):
        raise EvaluationError("err.no_predictions", run=run_id, split=split)
    with np.load(path) as data:
        return SplitPredictions(
            split, run.classes, data[f"{split}_ids"], data[f"{split}_labels"], data[f"{split}_probs"]
        )


def save_predictions(ws: Workspace, run_id: str, found: dict[str, SplitPredictions]) -> None:
    """Add or replace splits in the run's file, atomically (a reader never sees half a file)."""
    path = predictions_path(ws, run_id)
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


def predict_split(
    model: Any, split: Any, config: Any, progress: Callable[[int, int], None] | None = None
) -> np.ndarray:
    """Class probabilities of every image of a ``pipeline.Split``, through the training decode."""
    from core.training.pipeline import make_dataset

    n_classes = int(model.output_shape[-1])
    if not len(split):
        return np.zeros((0, n_classes), dtype=np.float32)
    ds = make_dataset(
        split,
        n_classes=n_classes,
        size=config.size,
        resize=config.resize,
        batch_size=PREDICT_BATCH,
        training=False,
        seed=config.seed,
        cache=False,
    )
    out, done = [], 0
    for x, _ in ds:
        out.append(np.asarray(model(x, training=False), dtype=np.float32))
        done += len(out[-1])
        if progress:
            progress(done, len(split))
    return np.concatenate(out)


def predict_splits(
    ws: Workspace,
    run_id: str,
    splits: tuple[str, ...] = ("val", "test"),
    model: Any = None,
    progress: Callable[[str, int, int], None] | None = None,
    data: Any = None,
) -> dict[str, SplitPredictions]:
    """Predict ``splits`` with the run's saved model (loaded here unless given) and store them.

    ``data`` is the ``TrainingData`` the run trained on (the worker passes it, so a relabel during
    training does not change what the run is evaluated on); without it, the dataset's current labelled
    images are used (an older run is then evaluated on today's labels; the Train page says when the
    dataset changed since).
    """
    from core.prediction.models import load_run_model
    from core.training.config import TrainConfig
    from core.training.pipeline import Split, load_training_data

    run = runs.get_run(ws, run_id)
    config = TrainConfig.from_dict(run.config)
    model = model if model is not None else load_run_model(ws, run_id)
    data = data if data is not None else load_training_data(ws, config.dataset)
    index = {name: i for i, name in enumerate(run.classes)}
    found = {}
    for split in splits:
        if split == UNLABELED:
            subset = _unlabeled(ws, config.dataset)
        else:
            current: Split = getattr(data, split)
            keep = [i for i, label in enumerate(current.labels) if data.classes[label] in index]
            subset = Split(
                [current.paths[i] for i in keep],
                [index[data.classes[current.labels[i]]] for i in keep],
                [current.ids[i] for i in keep],
            )
        report = (lambda done, total, s=split: progress(s, done, total)) if progress else None
        probs = predict_split(model, subset, config, report)
        found[split] = SplitPredictions(split, run.classes, np.asarray(subset.ids), np.asarray(subset.labels), probs)
    save_predictions(ws, run_id, found)
    return found


def _unlabeled(ws: Workspace, dataset: str) -> Any:
    """The dataset's active images without a label, as a split whose labels are all -1."""
    from core.training.pipeline import Split

    with ws.connect() as conn:
        rows = conn.execute(
            "SELECT i.id, i.stored_path FROM images i JOIN datasets d ON d.id = i.dataset_id"
            " WHERE d.name = ? AND i.class_id IS NULL AND i.status = 'active' ORDER BY i.id",
            (dataset,),
        ).fetchall()
    return Split([str(ws.path_of(p)) for _, p in rows], [-1] * len(rows), [i for i, _ in rows])
