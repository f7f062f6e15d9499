"""Which path each part of a run takes on a machine: the one decision the engine acts on and the time
estimate counts, so the two cannot disagree. Plain Python (the Train page computes estimates without
TensorFlow).

The head phase trains on cached base features when the feature cache is on, the run has head epochs,
a single replica trains (under a distribution strategy every replica would need the vectors sharded
like the images) and no teacher is involved (a distilled student learns from the teacher's view of each
image, which the vectors do not carry). A run whose saved model comes out of that head phase is
predicted at its end from the same vectors; that is sure only when no fine-tuning follows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.i18n import render
from core.runs.config import Planning, TrainConfig


@dataclass(frozen=True)
class RunPlan:
    replicas: int
    head_on_features: bool  # the head phase trains on cached base features
    fine_tune: bool  # a fine-tuning phase on images follows
    finish_from_features: bool  # the final predictions come from the vectors (when nothing beats the head)


def plan_run(config: TrainConfig, replicas: int = 1) -> RunPlan:
    on_features = bool(config.head_epochs and config.feature_cache and replicas == 1 and not config.teacher)
    fine = bool(config.fine_tune_epochs)
    return RunPlan(replicas=replicas, head_on_features=on_features, fine_tune=fine,
                   finish_from_features=on_features and not fine)  # fmt: skip


# The input sizes a measured plan chooses among (``Planning.MEASURED``): the advice's ladder for the
# ``keras.applications`` backbones, each a multiple of 32.
SIZE_LADDER = (96, 128, 160, 224, 288)
SIZES_TRIED = 3
# Fewer fine-tuning epochs than this are not worth their time: the first epochs at the fine-tuning rate
# mostly undo the head's fit (early stopping's patience is 3), so the plan keeps the head alone instead.
MIN_FINE_TUNE_EPOCHS = 3
# Below this many training images per class, fine-tuning the whole base did not beat the head alone
# (BENCHMARKS.md "The default run": 17 a class on the bundled sample, worse; 24 a class on a cut of
# clothing-small, equal at three times the time; 107 a class on clothing-small, 4-7 points better).
MIN_PER_CLASS_TO_FINE_TUNE = 50
# The head on cached vectors trains for at least this many steps (a dense layer: seconds): 15 epochs of a
# 68-image training split are 45 steps, which left the head short of its fit (validation 0.63-0.81 against
# 0.81-0.94 with enough steps, BENCHMARKS.md); early stopping still ends it when it stops improving.
MIN_HEAD_STEPS = 300


def size_candidates(backbone: Any, median_side: int) -> list[int]:
    """The sizes a measured plan tries for ``backbone`` on images whose median short side is
    ``median_side``: the ladder's largest :data:`SIZES_TRIED` that do not upscale the images (the smallest
    always), fitted to what the backbone accepts (a multiple of its patch, or its one fixed size)."""
    fitting = [s for s in SIZE_LADDER if s <= median_side] or [SIZE_LADDER[0]]
    return sorted({backbone.fit_size(s) for s in fitting[-SIZES_TRIED:]})


def fine_tune_pays(counts: dict[str, int], n_classes: int) -> bool:
    """Whether a measured plan fine-tunes at all: enough training images per class (:data:`MIN_PER_CLASS_TO_FINE_TUNE`)."""
    return counts["train"] >= MIN_PER_CLASS_TO_FINE_TUNE * n_classes


def head_epochs_for(wanted: int, n_train: int, batch: int) -> int:
    """A measured plan's head epochs: ``wanted``, or enough for :data:`MIN_HEAD_STEPS` steps on a small set."""
    steps = max(math.ceil(n_train / batch), 1)
    return max(wanted, math.ceil(MIN_HEAD_STEPS / steps)) if wanted else 0


def fit_fine_tune_epochs(wanted: int, left_s: float | None, epoch_s: float) -> int:
    """The fine-tuning epochs a measured plan keeps: ``wanted``, or as many as fit in ``left_s`` seconds
    at ``epoch_s`` each (None: no time limit); none when fewer than :data:`MIN_FINE_TUNE_EPOCHS` fit."""
    if left_s is None:
        return wanted
    fit = min(wanted, int(max(left_s, 0.0) // max(epoch_s, 1e-6)))
    return fit if fit >= MIN_FINE_TUNE_EPOCHS else 0


def plan_line(plan: dict[str, Any] | None, lang: str) -> str:
    """The one line that says what a measured plan chose and why (the run panel, the CLI's report); empty
    for a run that planned nothing."""
    if not plan:
        return ""
    return f"{render(plan['size'], lang)} {render(plan['then'], lang)}"


def wants_measuring(config: TrainConfig) -> bool:
    """Whether a run settles its size and epochs by measuring (:mod:`core.training.measured_plan`): a
    measured plan whose head trains on cached features (the search scores heads on them)."""
    return config.planning == Planning.MEASURED and plan_run(config).head_on_features and not config.text_head
