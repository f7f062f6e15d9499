"""Learning-rate sweeps: their result, the suggested rate, and their cache in the workspace (no
TensorFlow: the Train page reads these; ``core.training.lr_finder`` runs the sweep).

The learning-rate finder (fastai's ``lr_find``) is a short sweep that suggests a head learning rate.

The rate grows exponentially from ``start`` to ``end`` over ``steps`` batches of
the frozen-phase head (on cached features, so it costs seconds once the cache
exists); the sweep stops when the loss runs away. The suggestion is the rate
where the smoothed loss falls fastest, as fastai's ``valley``/``steep`` do.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.store.workspace import Workspace
from core.training.pipeline import load_training_data

# The sweep stops once the smoothed loss exceeds the best seen by this factor.
DIVERGENCE_FACTOR = 4.0
SMOOTHING = 0.9


@dataclass(frozen=True)
class LrSweep:
    rates: list[float]
    losses: list[float]  # smoothed
    suggestion: float


def sweep_path(ws: Workspace, config: Any, data: Any = None) -> Path:
    """Where the sweep for ``config`` (its dataset's current version, and what shapes the head) is cached
    (``data``: the dataset as already loaded, if the caller has it)."""

    data = data or load_training_data(ws, config.dataset)
    shape = {k: getattr(config, k) for k in ("backbone", "weights", "image_size", "resize", "batch_size",
                                              "dropout", "label_smoothing", "seed", "feature_views")}  # fmt: skip
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:12]
    return ws.cache_dir / "lr" / f"{data.dataset_id}-v{data.version}-{digest}.json"


def cached_sweep(ws: Workspace, config: Any, data: Any = None) -> LrSweep | None:
    path = sweep_path(ws, config, data)
    return LrSweep(**json.loads(path.read_text())) if path.exists() else None


def store_sweep(ws: Workspace, config: Any, sweep: LrSweep) -> Path:
    path = sweep_path(ws, config)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(sweep)))
    return path


def suggest(rates: list[float], losses: list[float]) -> float:
    """The rate at the steepest descent of the loss against log(rate), leaving out the sweep's first
    tenth (a smoothed average of a few batches is still noise) and its last twentieth (divergence),
    as fastai's plot skips both ends."""
    if len(rates) < 3:
        return rates[0] if rates else 1e-3
    slopes = np.gradient(np.asarray(losses), np.log10(np.asarray(rates)))
    start = max(len(rates) // 10, 1) if len(rates) >= 10 else 0
    end = len(rates) - (len(rates) // 20)
    return float(rates[start + int(np.argmin(slopes[start:end]))])
