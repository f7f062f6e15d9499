"""Model-assisted labeling (半自动标注): the newest model of a dataset suggests a label for each unlabeled
image, the queue puts the most uncertain images first (they teach the next model most), and suggestions
above a probability can be accepted for a class in one action. Read from the run's stored predictions
(``core.runs.predictions``, split ``unlabeled``): no TensorFlow here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.datasets import editing
from core.runs import store as runs
from core.runs.predictions import UNLABELED, load_predictions, stored_splits
from core.store.workspace import Workspace

TOP = 3


@dataclass(frozen=True)
class Suggestion:
    image_id: int
    top: list[tuple[str, float]]

    @property
    def confidence(self) -> float:
        return self.top[0][1]


def suggestion_run(ws: Workspace, dataset: str) -> runs.Run | None:
    """The newest trained run of the dataset with a saved model, whose classes the suggestions use; with no
    trained run yet, the newest zero-shot run (a model from the class descriptions)."""
    candidates = sorted(runs.model_runs(ws, dataset), key=lambda r: r.config.zero_shot)  # stable: newest first
    return candidates[0] if candidates else None


@dataclass(frozen=True)
class DescriptionScore:
    """How well one class's prompt (its name and description) picks its labelled validation images."""

    images: int  # labelled validation images of the class
    recall: float | None  # of those, the share the zero-shot model gives this class
    precision: float | None  # of the validation images it gives this class, the share that are


def description_scores(ws: Workspace, dataset: str) -> tuple[runs.Run, dict[str, DescriptionScore]] | None:
    """Per class, the newest zero-shot run's recall and precision on the labelled validation images (its
    stored predictions: no TensorFlow); None without such a run."""
    zero = [r for r in runs.model_runs(ws, dataset) if r.config.zero_shot]
    if not zero or "val" not in stored_splits(ws, zero[0].id):
        return None
    p = load_predictions(ws, zero[0].id, "val")
    scores = {}
    for i, name in enumerate(p.classes):
        truth, given = p.labels == i, p.predicted == i
        scores[name] = DescriptionScore(
            images=int(truth.sum()),
            recall=float((given & truth).sum() / truth.sum()) if truth.any() else None,
            precision=float((given & truth).sum() / given.sum()) if given.any() else None,
        )
    return zero[0], scores


def suggestions(ws: Workspace, dataset: str) -> dict[int, Suggestion] | None:
    """Suggestions for the images still unlabeled; None when the newest model has not predicted them yet."""
    run = suggestion_run(ws, dataset)
    if run is None or UNLABELED not in stored_splits(ws, run.id):
        return None
    p = load_predictions(ws, run.id, UNLABELED)
    still = set(editing.class_images(ws, dataset, None))
    out = {}
    for image_id, probs in zip(p.ids.tolist(), p.probs, strict=True):
        if image_id in still:
            order = np.argsort(-probs, kind="stable")[:TOP]
            out[image_id] = Suggestion(image_id, [(run.classes[i], float(probs[i])) for i in order])
    return out


def most_uncertain_first(ids: list[int], found: dict[int, Suggestion]) -> list[int]:
    """The queue with the least confident suggestions first; images without one keep their place at the end."""
    with_one = sorted((i for i in ids if i in found), key=lambda i: (found[i].confidence, i))
    return with_one + [i for i in ids if i not in found]


def confident(found: dict[int, Suggestion], label: str, threshold: float) -> list[int]:
    """Images whose top suggestion is ``label`` with at least ``threshold``."""
    return sorted(i for i, s in found.items() if s.top[0][0] == label and s.confidence >= threshold)
