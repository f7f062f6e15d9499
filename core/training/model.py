"""The model recipe, in one place, as the keras-io transfer-learning guide writes it.

    inputs (0-255 RGB) -> backbone preprocessing -> base(training=False) -> pooling
                       [-> unit normalisation] -> dropout -> dense softmax (float32, also under mixed precision)

The base is called with ``training=False`` so its BatchNorm layers stay in
inference mode, also after unfreezing. Unfreezing never touches BatchNorm.

For a ``keras.applications`` CNN the pooling is global average pooling. For a foundation backbone
(KerasHub, :mod:`core.training.foundation`) the base ends at the last block's tokens and the pooling is
the family's own (a small nested model named ``pooling``, frozen with the base and unfrozen with it,
then an identity layer named ``pool`` the feature extractor reads); a head
that starts from class prompts' text embeddings (``text_head``) sits on the unit-normalised embedding, so
its scores are cosine similarities times the model's logit scale.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from core.errors import ConfigError, TrainingError
from core.runs import store as runs
from core.runs.backbones import CAFFE_MEAN_BGR, Backbone, get_backbone, keras_models_dir
from core.runs.config import TrainConfig
from core.store.workspace import Workspace
from core.training import devices, foundation
from core.training.devices import Devices
from core.training.pipeline import TrainingData, use_memory_cache
from core.training.zero_shot import class_prompts

HEAD_LAYER = "head"
# ImageNet weights shipped with the project for offline first runs (README.md there says what and whence).
BUNDLED_WEIGHTS = Path(__file__).resolve().parent / "weights"
POOL_LAYER = "pool"
POOLING_MODEL = "pooling"  # a foundation backbone's own pooling, before the POOL_LAYER identity
NORMALIZE_LAYER = "normalize"  # a text head's unit-normalised embedding (the feature cache's vectors then)


@keras.saving.register_keras_serializable(package="labeltune")
class Preprocess(keras.layers.Layer):
    """The backbone's own ``preprocess_input``, as a layer saved with the model; ``affine``: a KerasHub
    preset's image converter, ``pixels * scale + offset`` per channel."""

    def __init__(
        self, mode: str, scale: list[float] | None = None, offset: list[float] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if mode not in ("caffe", "tf", "none", "affine"):
            raise ValueError(f"mode should be 'caffe', 'tf', 'none' or 'affine'. Received mode={mode!r}")
        self.mode = mode
        self.scale, self.offset = scale, offset

    def call(self, x: Any) -> Any:
        x = keras.ops.cast(x, self.compute_dtype)
        if self.mode == "affine":
            scale = keras.ops.convert_to_tensor(self.scale, dtype=self.compute_dtype)
            return x * scale + keras.ops.convert_to_tensor(self.offset, dtype=self.compute_dtype)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "caffe":
            bgr = keras.ops.flip(x, axis=-1)
            return bgr - keras.ops.convert_to_tensor(CAFFE_MEAN_BGR, dtype=self.compute_dtype)
        return x

    def get_config(self) -> dict[str, Any]:
        extra = {"scale": self.scale, "offset": self.offset} if self.mode == "affine" else {}
        return {**super().get_config(), "mode": self.mode, **extra}


@keras.saving.register_keras_serializable(package="labeltune")
class MirrorImage(keras.layers.Layer):
    """The image mirrored left to right: the second view of flip-averaged predictions (:func:`flip_averaged`)."""

    def call(self, x: Any) -> Any:
        return keras.ops.flip(x, axis=2)


FLIP_AVERAGED = "flip_averaged"  # the wrapper's name: a saved model whose predictions are flip-averaged


def flip_averaged(model: Any) -> Any:
    """``model`` with test-time augmentation: each image's probabilities averaged with its mirror image's
    (BENCHMARKS.md, "The default run"). One model, so prediction, evaluation and every export format run the
    same arithmetic; it costs two forward passes per image."""
    inputs = keras.Input(model.input_shape[1:], name="image")
    both = [model(inputs), model(MirrorImage(name="mirror")(inputs))]
    return keras.Model(inputs, keras.layers.Average(dtype="float32", name="average")(both), name=FLIP_AVERAGED)


@dataclass(frozen=True)
class Built:
    model: Any
    base: Any
    weights_used: str
    pool: Any = None  # a foundation backbone's pooling model (unfrozen with the base)


def weights_identity(weights: str) -> str:
    """What a run says it used: ``imagenet``, ``none`` or ``file:NAME#sha256-prefix``."""
    if weights in ("imagenet", "none"):
        return weights
    path = Path(weights).expanduser()
    return f"file:{path.name}#{foundation.file_digest(path)}" if path.is_file() else f"file:{path.name}"


def bundled_weights(wanted: str) -> Path | None:
    """The shipped file for the weights file Keras asked for: that very file, or, for a no-top file of
    another input size (MobileNet names one file per size, e.g. ``..._0.35_96_no_top.h5``), the shipped
    one of the same network at its own size. Without the classifier every weight is a convolution or a
    normalisation whose shape does not depend on the input size, so they load at any size. They are not
    that size's own file (Keras' files for each size were trained at that resolution), but genuine
    ImageNet features, a far better start than random ones; the run records which file it used at what
    size (``weights_used``)."""
    exact = BUNDLED_WEIGHTS / wanted
    if exact.is_file():
        return exact
    stem = re.fullmatch(r"(.+)_\d+_no_top\.h5", wanted)
    if stem is None:
        return None
    others = sorted(BUNDLED_WEIGHTS.glob(f"{stem.group(1)}_*_no_top.h5"))
    return others[0] if others else None


def build_base(backbone: Backbone, size: int, weights: str) -> tuple[Any, str]:
    """The headless backbone with the asked-for weights; never silently random."""
    ctor = backbone.constructor()
    kwargs = {"include_top": False, "input_shape": (size, size, 3), **backbone.kwargs}
    if weights == "none":
        return ctor(weights=None, **kwargs), "none"
    if weights == "imagenet":
        try:
            return ctor(weights="imagenet", **kwargs), "imagenet"
        except Exception as exc:  # noqa: BLE001 - keras.utils.get_file raises a bare Exception offline
            match = re.search(r"https?://\S+?\.h5", str(exc))
            if match is None and not isinstance(exc, OSError):
                raise
            url = match.group(0) if match else "?"
            bundled = bundled_weights(url.rsplit("/", 1)[-1]) if match else None
            if bundled is not None:  # offline, and the project ships this backbone's ImageNet weights
                base, _ = build_base(backbone, size, str(bundled))
                name = weights_identity(str(bundled))[len("file:") :]
                at = "" if bundled.name == url.rsplit("/", 1)[-1] else f", at {size} px"
                return base, f"imagenet (bundled {name}{at})"
            raise TrainingError(
                "err.weights_offline",
                backbone=backbone.name,
                file=url.rsplit("/", 1)[-1],
                url=url,
                folder=str(keras_models_dir()),
                reason=("…" + str(exc)[-200:]) if len(str(exc)) > 200 else str(exc),
            ) from exc
    path = Path(weights).expanduser()
    if not path.is_file():
        raise TrainingError("err.weights_missing", path=str(path))
    base = ctor(weights=None, **kwargs)
    fresh = [keras.ops.convert_to_numpy(w).copy() for w in base.weights if len(w.shape) >= 2]
    try:
        base.load_weights(str(path))
    except (ValueError, OSError, KeyError) as exc:
        raise TrainingError(
            "err.weights_mismatch", path=str(path), backbone=backbone.name, reason=str(exc)[:300]
        ) from exc
    loaded = [keras.ops.convert_to_numpy(w) for w in base.weights if len(w.shape) >= 2]
    untouched = sum(np.array_equal(a, b) for a, b in zip(fresh, loaded, strict=True))
    if untouched:
        # Keras skips layers it cannot match with only a warning: that would be a silent random start.
        reason = f"{untouched} of {len(fresh)} kernels were not in the file"
        raise TrainingError("err.weights_mismatch", path=str(path), backbone=backbone.name, reason=reason)
    return base, weights_identity(weights)


def build_model(
    backbone_name: str,
    *,
    n_classes: int,
    size: int,
    weights: str,
    dropout: float,
    seed: int,
    prompts: list[str] | None = None,
) -> Built:
    """The full classifier with its base frozen. Call inside the strategy's scope. ``prompts`` (one per
    class, image-text backbones only): the head starts as those prompts' text embeddings, a zero-shot
    classifier (:mod:`core.training.zero_shot`)."""
    backbone = get_backbone(backbone_name)
    if prompts is not None and not backbone.family.image_text:
        raise ConfigError("err.text_head_needs_image_text", backbone=backbone.friendly)
    inputs = keras.Input((size, size, 3), name="image")
    pool = None
    if backbone.foundation:
        parts = foundation.build_parts(backbone, size, weights, POOLING_MODEL, text=prompts is not None)
        base, pool, used = parts.base, parts.pool, parts.weights_used
        pool.trainable = False
        x = Preprocess("affine", parts.scale, parts.offset, name="preprocess")(inputs)
        x = pool(base(x, training=False), training=False)
        x = keras.layers.Identity(name=POOL_LAYER)(x)  # a nested model's .output is its own graph's
    else:
        base, used = build_base(backbone, size, weights)
        x = Preprocess(backbone.preprocess, name="preprocess")(inputs)
        x = keras.layers.GlobalAveragePooling2D(name=POOL_LAYER)(base(x, training=False))
    base.trainable = False
    if prompts is not None:
        x = keras.layers.UnitNormalization(name=NORMALIZE_LAYER)(x)
    outputs = head_layers(n_classes, dropout, seed)(x)
    model = keras.Model(inputs, outputs, name=f"labeltune_{backbone.family.value}")
    if prompts is not None:
        model.get_layer(HEAD_LAYER).set_weights(foundation.text_head_weights(parts.hub, backbone, prompts))
    return Built(model, base, used, pool)


@dataclass(frozen=True)
class Prepared:
    """What every piece of training work starts from (:func:`prepare_model`)."""

    strategy: Any  # tf.distribute strategy: build and train inside its scope
    device_plan: Devices
    built: Built
    memory_cache: bool  # decoded images kept in memory (core.training.pipeline.use_memory_cache)
    class_weights: dict[int, float] | None  # the config's "auto" class weights, else None


def prepare_model(config: TrainConfig, data: TrainingData, *, weights: str | None = None) -> Prepared:
    """The TensorFlow set-up a run, the settings search, the time estimate and the LR finder share: the
    config's seed, the devices (strategy, mixed precision and XLA as the config asks; the caller sets the
    float32 policy back when done), the classifier built in the strategy's scope (``weights`` overrides the
    config's: the estimate times random weights), the memory-cache choice and the class weights."""
    keras.utils.set_random_seed(config.seed)
    devices.enable_memory_growth()
    strategy = devices.make_strategy()
    device_plan = devices.plan(strategy, config.mixed_precision, config.jit_compile)
    devices.apply_precision(device_plan)
    with strategy.scope():
        built = build_model(
            config.backbone, n_classes=len(data.classes), size=config.size, weights=weights or config.weights,
            dropout=config.dropout, seed=config.seed, prompts=class_prompts(config, data) if config.text_head else None,
        )  # fmt: skip
    return Prepared(
        strategy=strategy,
        device_plan=device_plan,
        built=built,
        memory_cache=use_memory_cache(config.cache, len(data.train) + len(data.val), config.size),
        class_weights=data.class_weights() if config.class_weights == "auto" and not config.zero_shot else None,
    )


def head_layers(n_classes: int, dropout: float, seed: int) -> Any:
    """Dropout and the softmax classifier; the same (seeded) head for the feature-cache path."""
    dense = keras.layers.Dense(
        n_classes,
        activation="softmax",
        dtype="float32",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        name=HEAD_LAYER,
    )
    drop = keras.layers.Dropout(dropout, seed=seed, name="dropout")
    return lambda x: dense(drop(x))


def set_unfrozen(built: Built, unfreeze: str) -> int:
    """Make the top ``unfreeze`` weighted layers of the base trainable (or all), never BatchNorm; a
    foundation backbone's layers are its patch embedding, each transformer block and the final norm, and
    its pooling is unfrozen with them.

    Returns the number of layers made trainable.
    """
    base = built.base
    candidates = [
        layer for layer in base.layers if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
    ]
    chosen = candidates if unfreeze == "all" else candidates[-int(unfreeze) :]
    base.trainable = True
    for layer in base.layers:
        layer.trainable = False
    for layer in chosen:
        layer.trainable = True
    if built.pool is not None:
        built.pool.trainable = True
    return len(chosen)


def needs_keras_hub(path: Path) -> bool:
    """Whether a saved ``.keras`` file holds KerasHub layers (a foundation backbone): its config names them."""
    with zipfile.ZipFile(path) as archive:
        return b'"keras_hub' in archive.read("config.json")


def load_model_file(path: Path) -> Any:
    """A saved ``.keras`` model of this project, with Keras' safe mode (a file that carries code, such as a
    Lambda layer, is refused) and without its optimizer: for predicting, never for training on. KerasHub is
    imported only for a file that needs its layers (registering them with Keras)."""
    if needs_keras_hub(Path(path)):
        foundation.import_hub()
    return keras.saving.load_model(path, compile=False, safe_mode=True)


def load_run_model(ws: Workspace, run_id: str) -> Any:
    """The run's one model (``model.keras`` in its own folder, see :func:`core.runs.store.model_file`)."""
    return load_model_file(runs.model_file(ws, run_id))
