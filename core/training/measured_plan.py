"""A measured plan (``Planning.MEASURED``, the advice's default): before its head phase a run settles its
input size and fine-tuning epochs from what it measures on this machine, not from a fixed table.

1. **Size.** For each candidate size (``core.training.plan.size_candidates``: the advice's ladder, never
   upscaling the images) the frozen base's features of the images (the feature cache, which the head
   phase then finds again) and a head trained on them as the engine trains it; the size whose head scores
   best on the validation images wins (accuracy, then log loss, then the smaller size). On cached
   features a larger size costs one more pass over the images, seconds to a minute on a laptop, while a
   fixed small size gave away several points (issue 28: 0.895 at 160 px against 0.915 at 288 px for a
   logistic regression on the same backbone's features).
2. **Fine-tuning**, only with enough training images per class for it to beat the head alone
   (``core.training.plan.fine_tune_pays``). One epoch's cost at the chosen size (this machine's timed steps when the estimate
   measured them, else three timed forward passes per training image: ``fine_tune_epoch_s``); the
   epochs that fit the run's time limit (``max_minutes``, the advice's figure) after the search, the head
   phase and the final predictions, none when fewer than ``MIN_FINE_TUNE_EPOCHS`` fit.
3. **The head** trains for at least ``MIN_HEAD_STEPS`` steps on a small training split (its epochs on
   cached vectors cost seconds; early stopping ends it when validation stops improving).

The run records the chosen size and epochs in its config (so evaluation, prediction and export use
exactly the size it trained at) and the plan, with every size's scores and the one line that says why,
in its device record (:func:`core.training.plan.plan_line` renders it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from core.i18n import stored
from core.runs.backbones import get_backbone
from core.runs.config import TrainConfig
from core.store.workspace import Workspace
from core.training import estimate, features
from core.training import plan as planning
from core.training.head import fit_head_on_vectors
from core.training.plan import fine_tune_pays, fit_fine_tune_epochs, head_epochs_for, size_candidates

# Augmentation, the per-batch callbacks and the backup checkpoint: 1.5x the three forward passes, measured
# on clothing-small (a 160 px MobileNetV2 x0.35 fine-tuning epoch took 18 s where 3 forward passes per
# image take 12 s).
FINE_TUNE_OVERHEAD = 1.5


def forward_s(model: Any) -> float:
    """The base's forward pass per image, timed on batches of blank images: the model's own cost (the
    feature pass's wall time is mostly decoding, which a fine-tuning epoch reads from memory)."""

    size = int(model.input_shape[1])
    batch = np.zeros((32, size, size, 3), dtype=np.float32)
    extractor = features.extractor_of(model)
    extractor.predict_on_batch(batch)  # the first call traces (an eager call would time Python, not the model)
    times = []
    for _ in range(3):
        began = time.monotonic()
        extractor.predict_on_batch(batch)
        times.append(time.monotonic() - began)
    return sorted(times)[1] / 32


def fine_tune_epoch_s(ws: Workspace, config: TrainConfig, data: Any, forward: float) -> float:
    """Seconds per fine-tuning epoch: from the time estimate's timings when this machine measured this
    shape, else three forward passes per training image (forward and backward) and one per validation
    image, plus decoding."""

    one = replace(config, fine_tune_epochs=1)
    timed = estimate.cached_times(ws, one)
    if timed is not None:
        parts = estimate.estimate(one, data.counts(), timed[0]).parts
        return max(parts["fine_tune"], 1.0)
    return (3 * len(data.train) + len(data.val)) * forward * FINE_TUNE_OVERHEAD


def val_scores(head: Any, feats: Any) -> tuple[float, float]:
    """Plain log loss and accuracy of ``head`` on the validation vectors (NaN when it diverged)."""

    probs = np.asarray(head(feats.val_x, training=False), dtype=np.float64)
    if not np.isfinite(probs).all():
        return float("nan"), float("nan")
    picked = np.clip(probs[np.arange(len(feats.val_y)), feats.val_y], 1e-7, 1.0)
    return float(-np.log(picked).mean()), float((probs.argmax(1) == feats.val_y).mean())


def measure(
    ws: Workspace,
    config: TrainConfig,
    data: Any,
    median_side: int,
    began: float,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[TrainConfig, dict[str, Any]]:
    """The run's config with its measured size and fine-tuning epochs, and the plan to record.
    ``began``: when the run's execution started (``time.monotonic()``), from which ``max_minutes`` counts."""
    import keras

    from core.training.model import prepare_model

    sizes = size_candidates(get_backbone(config.backbone), median_side)
    config = replace(config, head_epochs=head_epochs_for(config.head_epochs, len(data.train), config.planned_batch))
    pays = fine_tune_pays(data.counts(), len(data.classes))
    tried: list[dict[str, Any]] = []
    for number, size in enumerate(sizes):
        if tried and should_stop():
            break
        if progress:
            progress(number, len(sizes))
        trial = replace(config, image_size=size)
        started = time.monotonic()
        keras.backend.clear_session()
        prepared = prepare_model(trial, data)
        feats = features.load_or_build(ws, trial, data, prepared.built.model, prepared.memory_cache)
        feature_s = time.monotonic() - started
        forward = forward_s(prepared.built.model)
        head_began = time.monotonic()
        stopping = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.early_stopping or trial.head_epochs, restore_best_weights=True
        )
        head = fit_head_on_vectors(
            feats, trial, len(data.classes), prepared.device_plan.jit_compile, [stopping], prepared.class_weights
        )
        loss, accuracy = val_scores(head, feats)
        tried.append({"size": size, "val_accuracy": round(accuracy, 4), "val_log_loss": round(loss, 4),
                      "feature_s": round(feature_s, 1), "head_s": round(time.monotonic() - head_began, 1),
                      "forward_ms": round(1000 * forward, 3)})  # fmt: skip
    keras.backend.clear_session()
    scored = [t for t in tried if np.isfinite(t["val_accuracy"])] or tried
    best = max(scored, key=lambda t: (t["val_accuracy"], -t["val_log_loss"], -t["size"]))
    chosen = replace(config, image_size=best["size"])
    epoch_s = fine_tune_epoch_s(ws, chosen, data, best["forward_ms"] / 1000)
    left = None
    if config.max_minutes:
        # Still to come besides fine-tuning: the model built again, the head phase (its features cached)
        # and the final predictions of validation and test from the images.
        finish_s = best["feature_s"] * (len(data.val) + len(data.test)) / max(sum(data.counts().values()), 1)
        left = 60 * config.max_minutes - (time.monotonic() - began) - best["head_s"] - finish_s - 5.0
    epochs = fit_fine_tune_epochs(config.fine_tune_epochs, left, epoch_s) if config.fine_tune_epochs and pays else 0
    chosen = replace(chosen, fine_tune_epochs=epochs)
    scores = " · ".join(f"{t['size']} px {t['val_accuracy']:.3f}" for t in tried)
    minutes = f"{config.max_minutes:g}"
    if not config.fine_tune_epochs:
        then = stored("plan.head_only", epochs=config.head_epochs)
    elif not pays:
        then = stored("plan.too_few_to_fine_tune", per_class=len(data.train) // max(len(data.classes), 1),
                      minimum=planning.MIN_PER_CLASS_TO_FINE_TUNE, epochs=config.head_epochs)  # fmt: skip
    elif left is None:
        then = stored("plan.fine_tune_all", epochs=epochs, epoch_s=round(epoch_s))
    elif epochs == config.fine_tune_epochs:
        then = stored("plan.fine_tune", epochs=epochs, epoch_s=round(epoch_s), minutes=minutes)
    elif epochs:
        then = stored("plan.fine_tune_cut", epochs=epochs, wanted=config.fine_tune_epochs, epoch_s=round(epoch_s),
                      minutes=minutes)  # fmt: skip
    else:
        then = stored("plan.no_fine_tune", epoch_s=round(epoch_s), minutes=minutes)
    plan = {
        "size": stored("plan.size", size=best["size"], scores=scores) if len(tried) > 1 else
        stored("plan.size_one", size=best["size"]),
        "then": then,
        "sizes": tried,
        "fine_tune_epoch_s": round(epoch_s, 1),
        "seconds": round(time.monotonic() - began, 1),
    }  # fmt: skip
    return chosen, plan
