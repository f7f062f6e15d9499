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

from dataclasses import dataclass

from core.runs.config import TrainConfig


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
