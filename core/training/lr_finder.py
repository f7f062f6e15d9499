"""Learning-rate finder (fastai's ``lr_find``): a short sweep that suggests a head learning rate.

The rate grows exponentially from ``start`` to ``end`` over ``steps`` batches of
the frozen-phase head (on cached features, so it costs seconds once the cache
exists); the sweep stops when the loss runs away. The suggestion is the rate
where the smoothed loss falls fastest, as fastai's ``valley``/``steep`` do.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.store.workspace import Workspace

# The sweep stops once the smoothed loss exceeds the best seen by this factor.
DIVERGENCE_FACTOR = 4.0
SMOOTHING = 0.9


@dataclass(frozen=True)
class LrSweep:
    rates: list[float]
    losses: list[float]  # smoothed
    suggestion: float


def sweep_path(ws: Workspace, config: Any) -> Path:
    """Where the sweep for ``config`` (its dataset's current version, and what shapes the head) is cached."""
    from core.training.pipeline import load_training_data

    data = load_training_data(ws, config.dataset)
    shape = {k: getattr(config, k) for k in ("backbone", "weights", "image_size", "resize", "batch_size",
                                              "dropout", "label_smoothing", "seed", "feature_views")}  # fmt: skip
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:12]
    return ws.cache_dir / "lr" / f"{data.dataset_id}-v{data.version}-{digest}.json"


def cached_sweep(ws: Workspace, config: Any) -> LrSweep | None:
    path = sweep_path(ws, config)
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


def find_lr(ws: Workspace, config: Any, start: float = 1e-6, end: float = 1.0, steps: int = 100) -> LrSweep:
    """Sweep the head's learning rate for ``config`` (a :class:`TrainConfig`)."""
    import keras

    from core.training import features
    from core.training.model import build_model, head_layers
    from core.training.pipeline import load_training_data, use_memory_cache

    keras.utils.set_random_seed(config.seed)
    data = load_training_data(ws, config.dataset)
    n = len(data.classes)
    built = build_model(config.backbone, n, config.size, config.weights, config.dropout, config.seed)
    cache = use_memory_cache(config.cache, len(data.train) + len(data.val), config.size)
    feats = features.load_or_build(ws, config, data, built.model, cache)
    inputs = keras.Input((feats.train_x.shape[1],))
    head = keras.Model(inputs, head_layers(n, config.dropout, config.seed)(inputs))
    optimizer = keras.optimizers.Adam(learning_rate=start)
    head.compile(optimizer=optimizer, loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing))
    y = np.eye(n, dtype=np.float32)[feats.train_y]
    rng = np.random.default_rng(config.seed)
    factor = (end / start) ** (1 / max(steps - 1, 1))
    rates: list[float] = []
    losses: list[float] = []
    smoothed, best = 0.0, math.inf
    for step in range(steps):
        rate = start * factor**step
        optimizer.learning_rate.assign(rate)
        idx = rng.choice(len(y), size=min(config.batch_size, len(y)), replace=False)
        loss = float(head.train_on_batch(feats.train_x[idx], y[idx]))
        smoothed = SMOOTHING * smoothed + (1 - SMOOTHING) * loss
        value = smoothed / (1 - SMOOTHING ** (step + 1))
        if not math.isfinite(value):
            break
        rates.append(rate)
        losses.append(value)
        best = min(best, value)
        if value > DIVERGENCE_FACTOR * best:
            break
    return LrSweep(rates, losses, suggest(rates, losses))
