"""Knowledge distillation (Hinton, Vinyals & Dean 2015): a student learns from a completed run (the
teacher) as well as from the labels, so a small backbone can carry much of a large one's accuracy.

The teacher's probabilities for the training and validation images are computed once with the
teacher's own model and input pipeline and cached in its run folder (per dataset version), softened
at the temperature T (p^(1/T), renormalised). Each batch's target is the one-hot label and the soft
target side by side; the loss is ``alpha * CE(labels, student) + (1 - alpha) * T² * KL(teacher_T ||
student_T)``. The model's outputs are probabilities (softmax inside), so the student is softened from
its log-probabilities, which is the same as dividing its logits by T.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import keras
import numpy as np
from keras import ops

from core.runs import store as runs
from core.runs.folder import RunFolder
from core.store.workspace import Workspace
from core.training.inference import predict_split

EPSILON = 1e-7


@keras.saving.register_keras_serializable(package="labeltune")
class DistillationLoss(keras.losses.Loss):
    def __init__(
        self, n_classes: int, temperature: float, alpha: float, label_smoothing: float = 0.0, **kwargs: Any
    ) -> None:
        super().__init__(name=kwargs.pop("name", "distillation"), **kwargs)
        self.n_classes, self.temperature, self.alpha = n_classes, temperature, alpha
        self.label_smoothing = label_smoothing

    def call(self, y_true: Any, y_pred: Any) -> Any:
        n, t = self.n_classes, self.temperature
        hard, soft = y_true[:, :n], y_true[:, n:]
        ce = keras.losses.categorical_crossentropy(hard, y_pred, label_smoothing=self.label_smoothing)
        student = ops.log(ops.clip(y_pred, EPSILON, 1.0)) / t
        student = student - ops.logsumexp(student, axis=-1, keepdims=True)
        kl = ops.sum(soft * (ops.log(ops.clip(soft, EPSILON, 1.0)) - student), axis=-1)
        return self.alpha * ce + (1.0 - self.alpha) * t * t * kl

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_classes": self.n_classes, "temperature": self.temperature,
                "alpha": self.alpha, "label_smoothing": self.label_smoothing}  # fmt: skip


@keras.saving.register_keras_serializable(package="labeltune")
def hard_accuracy(y_true: Any, y_pred: Any) -> Any:
    """Accuracy against the one-hot half of a distillation target."""
    n = ops.shape(y_pred)[-1]
    return keras.metrics.categorical_accuracy(y_true[:, :n], y_pred)


def soften(probs: np.ndarray, temperature: float) -> np.ndarray:
    logits = np.log(np.clip(probs.astype(np.float64), EPSILON, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def teacher_targets(ws: Workspace, config: Any, data: Any) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's softened probabilities for ``data``'s training and validation images (cached)."""
    from core.training.model import load_run_model

    teacher = runs.get_run(ws, config.teacher)
    ids = json.dumps([data.dataset_id, data.version, data.train.ids, data.val.ids])
    path = RunFolder.of(ws, teacher.id).teacher_targets(hashlib.sha256(ids.encode()).hexdigest()[:16])
    if path.exists():
        cached = np.load(path)
        train, val = cached["train"], cached["val"]
    else:
        model = load_run_model(ws, teacher.id)
        train, val = predict_split(model, data.train, teacher.config), predict_split(model, data.val, teacher.config)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, train=train, val=val)
        tmp.replace(path)
    return soften(train, config.temperature), soften(val, config.temperature)


def compile_args(n_classes: int, config: Any) -> dict[str, Any]:
    """The loss and metrics of a distillation run, for ``model.compile``."""
    return {
        "loss": DistillationLoss(n_classes, config.temperature, config.distill_alpha, config.label_smoothing),
        "metrics": [keras.metrics.MeanMetricWrapper(hard_accuracy, name="accuracy")],
    }
