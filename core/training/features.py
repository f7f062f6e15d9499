"""The feature-cache fast path for the frozen phase.

While the base is frozen its output for an image never changes, so it is
computed once (per augmented view) and the head trains on those vectors. The
test split's vectors are kept too: when the run's best model is still the
frozen base with a head trained here, the engine predicts validation and test
from these vectors through that head (the same probabilities as the images
through the saved model) instead of decoding every image again. The cache
lives in ``workspace/cache/features/`` keyed by everything that decides the
features: dataset id and version, the images per split, backbone, weights,
image size, resize mode, views (and their augmentation and seed when there
is more than one).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.runs.config import TrainConfig
from core.store.workspace import Workspace
from core.training.model import NORMALIZE_LAYER, POOL_LAYER, weights_identity
from core.training.pipeline import Split, TrainingData, make_dataset


@dataclass
class Features:
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The vectors and labels of ``val`` or ``test``, in the split's order."""
        return getattr(self, f"{name}_x"), getattr(self, f"{name}_y")


def cache_key(config: TrainConfig, data: TrainingData) -> str:
    parts = {
        "dataset": data.dataset_id,
        "version": data.version,
        "images": [len(data.train), len(data.val), len(data.test)],
        "backbone": config.backbone,
        "weights": weights_identity(config.weights),
        "size": config.size,
        "resize": config.resize,
        "views": config.feature_views,
    }
    if config.text_head:  # the unit-normalised embedding a text head sits on
        parts["normalized"] = True
    if config.weights == "none":
        parts["init_seed"] = config.seed
    if config.feature_views > 1:
        parts["augment"] = config.augment_config.to_dict()
        parts["seed"] = config.seed
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def cache_path(ws: Workspace, key: str, dataset_id: int) -> Path:
    """One folder per dataset, so deleting a dataset deletes its caches."""
    return ws.feature_cache_dir(dataset_id) / f"{key}.npz"


def extractor_of(model: Any) -> Any:
    """The model up to the vector its head reads: the pooling, or a text head's normalised embedding."""
    import keras

    names = {layer.name for layer in model.layers}
    layer = model.get_layer(NORMALIZE_LAYER if NORMALIZE_LAYER in names else POOL_LAYER)
    return keras.Model(model.inputs, layer.output, name="features")


def _extract(
    extractor: Any, split: Split, config: TrainConfig, n_classes: int, cache: bool, augmenter: Any = None, view: int = 0
) -> Any:
    ds = make_dataset(
        split,
        n_classes=n_classes,
        size=config.size,
        resize=config.resize,
        batch_size=config.planned_batch,
        training=False,
        seed=config.seed + view,  # each augmented view draws its own transformations
        cache=cache,
        augmenter=augmenter,
    ).map(lambda x, y: x)
    return extractor.predict(ds, verbose=0).astype(np.float32)


def load_or_build(ws: Workspace, config: TrainConfig, data: TrainingData, model: Any, cache: bool) -> Features:
    """Cached features for ``config`` and ``data``, computing and saving them if missing."""
    path = cache_path(ws, cache_key(config, data), data.dataset_id)
    if path.exists():
        with np.load(path) as saved:
            return Features(*(saved[name] for name in _ARRAYS))
    extractor = extractor_of(model)
    n = len(data.classes)
    views = [_extract(extractor, data.train, config, n, cache)]
    if config.feature_views > 1:
        from core.training.augment import build_augmenter

        augmenter = build_augmenter(config.augment_config)
        for view in range(1, config.feature_views):
            views.append(_extract(extractor, data.train, config, n, cache, augmenter, view))
    train_x = np.concatenate(views)
    train_y = np.tile(np.asarray(data.train.labels, dtype=np.int32), config.feature_views)
    val_x = _extract(extractor, data.val, config, n, cache)
    val_y = np.asarray(data.val.labels, dtype=np.int32)
    if len(data.test):
        test_x = _extract(extractor, data.test, config, n, cache=False)  # read once, at the end of the run
    else:
        test_x = np.zeros((0, train_x.shape[1]), dtype=np.float32)
    test_y = np.asarray(data.test.labels, dtype=np.int32)
    found = Features(train_x, train_y, val_x, val_y, test_x, test_y)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **{name: getattr(found, name) for name in _ARRAYS})
    os.replace(tmp, path)
    return found


_ARRAYS = ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")


def image_vectors(
    ws: Workspace,
    dataset_id: int,
    make_model: Any,
    weights_key: str,
    images: list[tuple[str, str]],
    progress: Any = None,
    batch_size: int = 32,
    resize: str = "pad",
) -> np.ndarray:
    """The base's pooled features of ``images`` (``(content hash, file path)`` pairs) through the model
    ``make_model()`` returns (a classifier from ``build_model``; built only when some image is not
    cached yet), one row per image in order. Vectors depend only on an image's
    bytes and the base, so they are cached by content hash in one file per base (``weights_key`` names the
    backbone, weights and size): an audit after a relabel, or after images were added, computes only the
    images it has not seen. ``progress(done, total)`` is called after each batch (it may raise to stop).
    ``resize``: the whole image, letterboxed, by default (a slightly cropped copy keeps more in common
    with its original than under a centre crop: measured in BENCHMARKS.md, the audit's near-duplicates)."""
    key = hashlib.sha256(f"{weights_key}|{resize}".encode()).hexdigest()[:24]
    path = ws.feature_cache_dir(dataset_id) / f"images-{key}.npz"
    known: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path) as saved:
            known = dict(zip(saved["hashes"].tolist(), saved["x"], strict=True))
    missing = [(h, p) for h, p in dict(images).items() if h not in known]
    if missing:
        model = make_model()
        size = int(model.input_shape[1])
        split = Split(paths=[p for _, p in missing], labels=[0] * len(missing))
        ds = make_dataset(split, n_classes=1, size=size, resize=resize, batch_size=batch_size,
                          training=False, seed=0, cache=False)  # fmt: skip
        extractor = extractor_of(model)
        done = 0
        for batch, _ in ds:
            found = np.asarray(extractor.predict_on_batch(batch), dtype=np.float32)
            for row in found:
                known[missing[done][0]] = row
                done += 1
            if progress is not None:
                progress(done, len(missing))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, hashes=np.asarray(list(known)), x=np.stack(list(known.values())))
        os.replace(tmp, path)
    return np.stack([known[h] for h, _ in images]) if images else np.zeros((0, 0), np.float32)
