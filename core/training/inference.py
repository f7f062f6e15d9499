"""Predicting a run's stored splits with its model, through the training decode (TensorFlow).

The engine calls :func:`predict_splits` when a run ends (with the saved model, on the data the run
trained on); the predictions job (``core.evaluation.jobs``) calls it for a run saved before predictions
were stored, for the train split, or for the unlabeled images the Label page's suggestions need. The
predictions themselves are stored and read by ``core.runs.predictions``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from core.datasets.catalog import unlabelled_images
from core.runs import store as runs
from core.runs.predictions import UNLABELED, SplitPredictions, save_predictions
from core.store.vocabulary import EVALUATED_SPLITS
from core.store.workspace import Workspace
from core.training.pipeline import Split, TrainingData, load_training_data, make_dataset

# Images per prediction batch: large enough to keep a CPU busy, small enough for 224 px on a laptop.
PREDICT_BATCH = 32


def predict_split(
    model: Any, split: Split, config: Any, progress: Callable[[int, int], None] | None = None
) -> np.ndarray:
    """Class probabilities of every image of ``split``, through the training decode."""
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
    splits: tuple[str, ...] = EVALUATED_SPLITS,
    model: Any = None,
    progress: Callable[[str, int, int], None] | None = None,
    data: TrainingData | None = None,
    flip: bool = False,
) -> dict[str, SplitPredictions]:
    """Predict ``splits`` with the run's saved model (loaded here unless given) and store them; ``flip``:
    its flip-averaged predictions (``core.training.model.flip_averaged``), stored beside the plain ones.

    ``data`` is the ``TrainingData`` the run trained on (the worker passes it, so a relabel during
    training does not change what the run is evaluated on); without it, the dataset's current labelled
    images are used (an older run is then evaluated on today's labels; the Train page says when the
    dataset changed since).
    """
    from core.training.model import flip_averaged, load_run_model

    run = runs.get_run(ws, run_id)
    config = run.config
    model = model if model is not None else load_run_model(ws, run_id)
    model = flip_averaged(model) if flip else model
    data = data if data is not None else load_training_data(ws, config.dataset, zero_shot=config.zero_shot)
    found = {}
    for split in splits:
        subset = _unlabeled(ws, config.dataset) if split == UNLABELED else _labelled(data, split, run.classes)
        report = (lambda done, total, s=split: progress(s, done, total)) if progress else None
        probs = predict_split(model, subset, config, report)
        found[split] = SplitPredictions(split, run.classes, np.asarray(subset.ids), np.asarray(subset.labels), probs)
    save_predictions(ws, run_id, found, flip=flip)
    return found


def save_split_probs(
    ws: Workspace, run_id: str, probs: dict[str, np.ndarray], data: TrainingData
) -> dict[str, SplitPredictions]:
    """Store probabilities the caller computed for labelled splits of ``data`` (in the splits' order), as
    :func:`predict_splits` stores its own: the engine's predictions from cached features."""
    run = runs.get_run(ws, run_id)
    found = {}
    for split, p in probs.items():
        subset = _labelled(data, split, run.classes)
        if len(subset) != len(p):
            raise ValueError(f"{len(p)} probabilities for the {len(subset)} images of {split}")
        found[split] = SplitPredictions(split, run.classes, np.asarray(subset.ids), np.asarray(subset.labels), p)
    save_predictions(ws, run_id, found)
    return found


def _labelled(data: TrainingData, split: str, classes: list[str]) -> Split:
    """The images of ``split`` whose class the run knows, labelled with the run's class indices."""
    index = {name: i for i, name in enumerate(classes)}
    current: Split = getattr(data, split)
    keep = [i for i, label in enumerate(current.labels) if data.classes[label] in index]
    return Split(
        [current.paths[i] for i in keep],
        [index[data.classes[current.labels[i]]] for i in keep],
        [current.ids[i] for i in keep],
    )


def _unlabeled(ws: Workspace, dataset: str) -> Split:
    """The dataset's active images without a label, as a split whose labels are all -1."""
    rows = unlabelled_images(ws, dataset)
    return Split([str(ws.path_of(p)) for _, p in rows], [-1] * len(rows), [i for i, _ in rows])
