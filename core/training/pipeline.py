"""From the workspace to ``tf.data``: which images train, and the one decode-and-resize.

:func:`load_pixels` is the only way a stored image becomes model input, in
training, evaluation and prediction alike: decode the stored file (original
JPEG or normalised PNG, see ``core.datasets.images``), resize to the model's size, round
to uint8. Augmentation is the only thing training adds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.datasets.catalog import labelled_images, read_dataset
from core.errors import TrainingError
from core.store.workspace import Workspace

# Decoded images are cached in RAM only while they fit in this many bytes (uint8 pixels):
# 10,000 images at 224 px would take 1.5 GB, so large datasets are decoded every epoch instead.
MEMORY_CACHE_BYTES = 1 << 30
# Shuffle buffer over cached pixels, in images (the cache already holds them all in RAM).
SHUFFLE_BUFFER = 4096


@dataclass
class Split:
    paths: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)  # the images' ids in the store

    def __len__(self) -> int:
        return len(self.paths)


@dataclass
class TrainingData:
    dataset_id: int
    version: int
    classes: list[str]
    train: Split
    val: Split
    test: Split
    skipped_classes: list[str]  # described but without any image
    descriptions: dict[str, str] = field(default_factory=dict)  # per class (标签说明): zero-shot prompts

    def counts(self) -> dict[str, int]:
        """Images per split."""
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def class_weights(self) -> dict[int, float]:
        """Inverse-frequency weights over the training split, mean 1 (as scikit-learn's 'balanced')."""
        counts = Counter(self.train.labels)
        total, n = len(self.train), len(self.classes)
        return {i: total / (n * counts[i]) for i in range(n)}


def load_training_data(ws: Workspace, dataset: str, *, zero_shot: bool = False) -> TrainingData:
    """The labelled, active images of ``dataset`` by split; refuses what cannot train. ``zero_shot``: a
    model from the class descriptions, which needs no labelled image: every class of the dataset (two at
    least), and whatever labelled validation and test images there are to score it on."""

    with ws.connect() as conn:
        # One read transaction: the version and the labels come from one snapshot (WAL), so a relabel
        # racing this read gives either the old version with the old labels or the new with the new.
        conn.begin_read()
        summary = read_dataset(conn, dataset)
        rows = labelled_images(conn, summary.id)
    populated = [name for name, count in summary.classes.items() if count > 0 or zero_shot]
    if len(populated) < 2:
        raise TrainingError("err.too_few_classes", dataset=dataset, count=len(populated))
    no_train = [name for name in populated if summary.by_split[name]["train"] == 0]
    if no_train and not zero_shot:
        raise TrainingError("err.class_without_train", dataset=dataset, classes=", ".join(no_train))
    index = {name: i for i, name in enumerate(populated)}
    splits = {"train": Split(), "val": Split(), "test": Split()}
    for image_id, stored, name, split in rows:
        splits[split].ids.append(image_id)
        splits[split].paths.append(str(ws.path_of(stored)))
        splits[split].labels.append(index[name])
    if not splits["val"] and not zero_shot:
        raise TrainingError("err.no_validation", dataset=dataset)
    return TrainingData(
        dataset_id=summary.id,
        version=summary.version,
        classes=populated,
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        skipped_classes=[name for name in summary.classes if name not in index],
        descriptions=dict(summary.descriptions),
    )


def load_pixels(encoded: Any, size: int, resize: str) -> Any:
    """Encoded stored image (a string tensor) to a ``(size, size, 3)`` uint8 tensor."""
    import tensorflow as tf

    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    if resize == "stretch":
        out = tf.image.resize(image, (size, size), antialias=True)
    elif resize == "pad":
        out = tf.image.resize_with_pad(image, size, size, antialias=True)
    else:  # crop: scale the shorter side to `size`, then take the centre
        shape = tf.cast(tf.shape(image)[:2], tf.float32)
        scale = tf.cast(size, tf.float32) / tf.reduce_min(shape)
        new = tf.cast(tf.math.ceil(shape * scale), tf.int32)
        out = tf.image.resize(image, new, antialias=True)
        out = tf.image.resize_with_crop_or_pad(out, size, size)
    return tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)


def pixels_from_bytes(data: bytes, size: int, resize: str) -> np.ndarray:
    """The same pixels for an image given as stored bytes (prediction, previews)."""
    import tensorflow as tf

    return load_pixels(tf.constant(data), size, resize).numpy()


def use_memory_cache(mode: str, n_images: int, size: int) -> bool:
    if mode == "memory":
        return True
    if mode == "none":
        return False
    return n_images * size * size * 3 <= MEMORY_CACHE_BYTES


def make_dataset(
    split: Split,
    *,
    n_classes: int,
    size: int,
    resize: str,
    batch_size: int,
    training: bool,
    seed: int,
    cache: bool,
    augmenter: Any = None,  # a core.training.augment.RandomAugment, training only
    class_weights: dict[int, float] | None = None,
    soft: np.ndarray | None = None,  # (len(split), n_classes) teacher targets: y becomes one-hot ++ soft
) -> Any:
    """Batches of ``(float32 pixels 0-255, one-hot labels[, sample weights])``; with ``soft`` the labels
    are the one-hot and the teacher's targets side by side (``core.training.distill``).

    Order: (shuffle file names,) read, decode and resize in parallel, (cache uint8 pixels and
    shuffle them,) batch, augment (training only), prefetch. Memory stays bounded by the
    prefetch depth unless the cache is on.
    """
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    labels = np.asarray(split.labels, dtype=np.int32)
    extra = () if soft is None else (np.asarray(soft, dtype=np.float32),)
    ds = tf.data.Dataset.from_tensor_slices((split.paths, labels, *extra))
    if training and not cache:
        # Shuffle the file list, not decoded pixels: no buffer of images in RAM.
        ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(
        lambda path, label, *rest: (load_pixels(tf.io.read_file(path), size, resize), label, *rest),
        num_parallel_calls=autotune,
        deterministic=True,
    )
    if cache:
        ds = ds.cache()
        if training:
            ds = ds.shuffle(min(len(split), SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=False)
    weights = None
    if class_weights:
        weights = tf.constant([class_weights[i] for i in range(n_classes)], dtype=tf.float32)

    def to_model(images: Any, label: Any, *rest: Any) -> Any:
        y = tf.one_hot(label, n_classes)
        if rest:
            y = tf.concat([y, rest[0]], axis=-1)
        x = tf.cast(images, tf.float32)
        if weights is not None:
            return x, y, tf.gather(weights, label)
        return x, y

    ds = ds.map(to_model, num_parallel_calls=autotune, deterministic=True)
    if augmenter is not None:
        # One stateless seed per batch from a seeded stream (a new stream each epoch): batches
        # are augmented in parallel and the same seed still gives the same run.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda batch, batch_seed: (augmenter(batch[0], batch_seed), *batch[1:]),
            num_parallel_calls=autotune,
            deterministic=True,
        )
    return ds.prefetch(autotune)
