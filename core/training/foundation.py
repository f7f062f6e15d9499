"""Foundation backbones from KerasHub (DINOv2, SigLIP / SigLIP 2, CLIP) in the model recipe.

A preset loads as KerasHub's own backbone class; from its image tower this module makes the two parts
the recipe (:func:`core.training.model.build_model`) puts between the preprocessing and the head:

- the **base**: the image as patch tokens through every transformer block to the last norm, one token
  per patch (plus the class and register tokens the family has). Its output is what fine-tuning
  unfreezes from the top and what the heat map weighs (:mod:`core.evaluation.gradcam`);
- the **pool**: the tokens to one vector, as each family's authors evaluate a linear probe: DINOv2 the
  class token with the mean of the patch tokens (the DINOv2 paper's linear evaluation), SigLIP the
  image tower's attention-pooling head (its pooled output), CLIP the class token through the image
  projection (its image embedding).

The preprocessing is the preset's own image converter's scale and offset, inside the model (so an
exported model takes plain 0-255 RGB like every other backbone's). KerasHub itself is imported only
inside these functions: a process that never builds a foundation backbone never loads it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from core.errors import ConfigError, LabelTuneError, TrainingError
from core.runs.backbones import BACKBONES, HUB_CLASSES, HUB_SCHEMES, PRESET_CONFIG, Backbone, Family, hub_cache_dir

WEIGHTS_FILE = "model.weights.h5"  # what KerasHub's save_to_preset writes
VISION_WEIGHTS = "layers/sig_lip_vision_encoder"  # a SigLIP preset's image tower in that file


@keras.saving.register_keras_serializable(package="labeltune")
class TokenPool(keras.layers.Layer):
    """DINOv2's linear-probe feature: the class token beside the mean of the patch tokens (the ``skip``
    tokens after the class token are registers, left out of the mean)."""

    def __init__(self, skip: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.skip = int(skip)

    def call(self, tokens: Any) -> Any:
        cls = tokens[:, 0, :]
        patches = keras.ops.mean(tokens[:, self.skip :, :], axis=1)
        return keras.ops.concatenate([cls, patches], axis=-1)

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        return (input_shape[0], 2 * input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "skip": self.skip}


@dataclass(frozen=True)
class Parts:
    base: Any  # keras.Model: images (preprocessed) -> tokens
    pool: Any  # keras.Model named "pool": tokens -> one vector
    scale: list[float]  # the preset's image converter: pixels (0-255) * scale + offset
    offset: list[float]
    weights_used: str  # "preset:HANDLE#sha256-prefix" (or "none": the architecture, random)
    hub: Any  # the KerasHub backbone (its text tower, for image-text families)


def import_hub() -> Any:
    """KerasHub, with a clear message where it is not installed (it is in requirements.txt)."""
    try:
        import keras_hub
    except ImportError as exc:
        raise TrainingError("err.keras_hub_missing", reason=str(exc)) from exc
    return keras_hub


def is_local(handle: str) -> bool:
    return not handle.startswith(HUB_SCHEMES) and handle not in BACKBONES


def fetch_hint(backbone: Backbone) -> dict[str, str]:
    """How to get a preset onto a machine without internet: the parameters of ``err.preset_offline``."""
    name = backbone.preset.split("/")[-1]
    return {
        "preset": backbone.preset,
        "command": f"python -m core fetch-preset {backbone.preset} --to {name}",
        "hf": f"hf://keras/{name}" if backbone.preset in BACKBONES else backbone.preset,
        "cache": str(hub_cache_dir()),
    }


@dataclass(frozen=True)
class VisionOnly:
    """A SigLIP preset's image tower alone, where its text tower is not needed (see :func:`load_hub`)."""

    vision_encoder: Any


def load_hub(backbone: Backbone, *, load_weights: bool, size: int | None = None, text: bool = True) -> Any:
    """The preset's KerasHub backbone (DINOv2 at ``size``; SigLIP and CLIP at their own size). Offline
    and not in KerasHub's cache, the error names the preset and how to fetch it: never random weights.
    ``text=False``: a SigLIP preset's image tower alone (:class:`VisionOnly`): SigLIP 2's text tower has a
    256,000-token vocabulary, and loading it too took a B/16 feature pass from 1.3 to 5.5 GB here."""
    keras_hub = import_hub()
    kwargs: dict[str, Any] = {}
    if backbone.family is Family.DINOV2 and size:
        kwargs["image_shape"] = (size, size, 3)
    policy = keras.config.dtype_policy().name
    if policy != "float32":
        kwargs["dtype"] = policy
    try:
        if backbone.family is Family.SIGLIP and not text and (vision := _siglip_vision(backbone, load_weights)):
            return vision
        hub = keras_hub.models.Backbone.from_preset(backbone.preset, load_weights=load_weights, **kwargs)
    except LabelTuneError:
        raise
    except Exception as exc:  # noqa: BLE001 - kagglehub, huggingface_hub and requests raise their own kinds offline
        if is_local(backbone.preset):
            raise ConfigError("err.preset_unreadable", path=backbone.preset, reason=str(exc)[-300:]) from exc
        raise TrainingError("err.preset_offline", reason=str(exc)[-300:], **fetch_hint(backbone)) from exc
    found = type(hub).__name__
    if HUB_CLASSES.get(found) is not backbone.family:
        raise ConfigError("err.preset_family", path=backbone.preset, found=found, known=", ".join(HUB_CLASSES))
    return hub


def _siglip_vision(backbone: Backbone, load_weights: bool) -> VisionOnly | None:
    """A Keras-format SigLIP preset's image tower built from its own config and its variables read from the
    preset's weights file (the tower's part of it only); None for a preset in another format (a Hugging
    Face checkpoint KerasHub converts), which loads whole. Every kernel must come from the file."""
    from keras.src.saving import saving_lib  # the reader Keras' load_weights uses, for one part of the file
    from keras_hub.src.utils.preset_utils import get_file

    config = json.loads(Path(get_file(backbone.preset, PRESET_CONFIG)).read_text(encoding="utf-8"))
    if config.get("registered_name") != "keras_hub>SigLIPBackbone" or "vision_encoder" not in config["config"]:
        return None
    tower = dict(config["config"]["vision_encoder"], config=dict(config["config"]["vision_encoder"]["config"]))
    if keras.config.dtype_policy().name != "float32":
        tower["config"]["dtype"] = keras.config.dtype_policy().name
    vision = keras.saving.deserialize_keras_object(tower)
    if load_weights:
        fresh = [np.array(keras.ops.convert_to_numpy(w)) for w in vision.trainable_weights if len(w.shape) >= 2]
        try:
            weights = get_file(backbone.preset, WEIGHTS_FILE)
        except FileNotFoundError:  # sharded weights (the largest presets): loaded whole
            return None
        store = saving_lib.H5IOStore(weights, mode="r")
        try:
            saving_lib._load_state(vision, weights_store=store, assets_store=None,
                                   inner_path=VISION_WEIGHTS, visited_saveables=set())  # fmt: skip
        finally:
            store.close()
        loaded = [keras.ops.convert_to_numpy(w) for w in vision.trainable_weights if len(w.shape) >= 2]
        # a randomly initialised kernel still as it was was not in the file (zero-initialised biases may be)
        if any(np.ptp(a) > 0 and np.array_equal(a, b) for a, b in zip(fresh, loaded, strict=True)):
            raise ConfigError("err.preset_unreadable", path=backbone.preset, reason="image tower weights not found")
    return VisionOnly(vision)


def weights_identity(backbone: Backbone, load_weights: bool) -> str:
    """``preset:HANDLE#sha256-prefix`` of the weights file the preset loaded (``none`` without weights)."""
    if not load_weights:
        return "none"
    from keras_hub.src.utils.preset_utils import get_file

    try:
        path = Path(get_file(backbone.preset, WEIGHTS_FILE))
    except (FileNotFoundError, ValueError):  # a Hugging Face checkpoint KerasHub converts: no Keras file
        return f"preset:{backbone.preset}"
    return f"preset:{backbone.preset}#{file_digest(path)}"


@functools.lru_cache(maxsize=32)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]


def file_digest(path: Path) -> str:
    """The first 12 hex digits of a weights file's SHA-256, read once per process for a file unchanged since
    (a preset's file is up to 1.5 GB; the audit, the estimate and the run each build the model)."""
    stat = Path(path).stat()
    return _digest(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def converter_affine(backbone: Backbone) -> tuple[list[float], list[float]]:
    """The preset's image converter as per-channel ``scale`` and ``offset`` on 0-255 pixels."""
    keras_hub = import_hub()
    converter = keras_hub.layers.ImageConverter.from_preset(backbone.preset)

    def per_channel(value: Any, neutral: float) -> list[float]:
        values = np.broadcast_to(np.asarray(neutral if value is None else value, dtype=np.float64), (3,))
        return [float(v) for v in values]

    return per_channel(converter.scale, 1.0), per_channel(converter.offset, 0.0)


def vision_tower(hub: Any, family: Family) -> Any:
    """The KerasHub model holding the image tower's layers."""
    return hub if family is Family.DINOV2 else hub.vision_encoder


def token_base(hub: Any, family: Family, size: int) -> Any:
    """Images (already scaled) to the last block's normed tokens, one layer per block (so fine-tuning can
    unfreeze the top blocks alone), reusing the preset's layers and weights."""
    images = keras.Input((size, size, 3), name="pixels")
    tower = vision_tower(hub, family)
    if family is Family.DINOV2:
        x = tower.embeddings(images)
        for block in tower.encoder.layers:
            x = block(x)
        x = tower.layernorm(x)
    elif family is Family.SIGLIP:
        x = tower.embedding(images)
        for block in tower.encoder_layers:
            x = block(x)
        x = tower.post_layer_norm(x)
    else:
        x = tower.pre_layer_norm(tower.embedding(images))
        for block in tower.encoder_layers:
            x = block(x)
        x = tower.layer_norm(x)
    return keras.Model(images, x, name=f"{family.value}_tokens")


def pool_model(hub: Any, family: Family, width: int, name: str) -> Any:
    """The family's linear-probe pooling, as a small model of its own (see the module's docstring). It takes
    any number of tokens (KerasHub's SigLIP embedding states one token too many for its symbolic shape)."""
    tokens = keras.Input((None, width), name="tokens")
    if family is Family.DINOV2:
        x = TokenPool(skip=1 + int(hub.num_register_tokens), name="cls_and_mean")(tokens)
    elif family is Family.SIGLIP:
        x = hub.vision_encoder.head(tokens)
    else:
        x = hub.vision_projection(hub.vision_pooler(tokens))
    return keras.Model(tokens, x, name=name)


def build_parts(backbone: Backbone, size: int, weights: str, pool_name: str, text: bool = False) -> Parts:
    """The base and pool of ``backbone`` at ``size`` with the preset's weights (``weights`` "imagenet":
    pretrained, whatever data the preset was trained on) or its architecture with random ones ("none");
    ``text``: the text tower loaded too (``Parts.hub``), for a head from prompts."""
    if weights not in ("imagenet", "none"):
        raise ConfigError("err.weights_file_foundation", backbone=backbone.friendly)
    load = weights == "imagenet"
    hub = load_hub(backbone, load_weights=load, size=size, text=text)
    own = int(vision_tower(hub, backbone.family).image_shape[0])
    if own != size:
        raise ConfigError("err.size_fixed", backbone=backbone.friendly, size=own, value=size)
    base = token_base(hub, backbone.family, size)
    pool = pool_model(hub, backbone.family, int(base.output.shape[-1]), pool_name)
    scale, offset = converter_affine(backbone)
    return Parts(base, pool, scale, offset, weights_identity(backbone, load), hub)


def fine_tune_units(base: Any) -> list[Any]:
    """The base's layers from the input up that fine-tuning may unfreeze: the patch embedding, each
    transformer block, the final norm (``unfreeze: N`` unfreezes the last N of them)."""
    return [layer for layer in base.layers if layer.weights]


def patch_grid(n_tokens: int) -> tuple[int, int]:
    """How many leading tokens are not patches (class, registers) and the patch grid's side, from the
    token count: the patches are the largest square (1 + 4 registers + 16² = 261 gives 5 and 16)."""
    side = int(np.sqrt(n_tokens))
    return n_tokens - side * side, side


def fetch_preset(backbone: Backbone, target: Path) -> Path:
    """Download ``backbone``'s preset (from wherever KerasHub finds it) and save it as a local preset folder
    at ``target``: backbone, weights, image converter and, for image-text models, the tokenizer. Written
    beside the target and renamed into place. For a machine with internet; the folder then travels."""
    if target.exists():
        raise ConfigError("err.target_exists", path=str(target))
    keras_hub = import_hub()
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    hub = load_hub(backbone, load_weights=True)
    hub.save_to_preset(str(partial))
    if backbone.family.image_text:
        preprocessor(backbone).save_to_preset(str(partial))
    else:
        keras_hub.layers.ImageConverter.from_preset(backbone.preset).save_to_preset(str(partial))
    os.replace(partial, target)
    return target


# The text tower, for a head from class prompts (core.training.zero_shot makes the prompts).
def preprocessor(backbone: Backbone) -> Any:
    """An image-text preset's own preprocessor (its tokenizer and image converter)."""
    keras_hub = import_hub()
    cls = keras_hub.models.SigLIPPreprocessor if backbone.family is Family.SIGLIP else keras_hub.models.CLIPPreprocessor
    return cls.from_preset(backbone.preset)


def text_embeddings(hub: Any, backbone: Backbone, prompts: list[str]) -> np.ndarray:
    """The prompts through the preset's own tokenizer and text tower, unit-normalised (one row each)."""
    dummy = np.zeros((len(prompts), 2, 2, 3), dtype=np.float32)  # the preprocessor takes both; unused here
    packed = preprocessor(backbone)({"prompts": prompts, "images": dummy})
    found = np.asarray(hub.get_text_embeddings(packed["token_ids"]), dtype=np.float64)
    return found / np.maximum(np.linalg.norm(found, axis=1, keepdims=True), 1e-12)


def logit_scale(hub: Any, backbone: Backbone) -> float:
    """The model's learnt temperature: ``exp(logit_scale)`` of its contrastive head."""
    head = hub.siglip_head if backbone.family is Family.SIGLIP else hub.clip_head
    return float(np.exp(np.asarray(head.logit_scale)))


def text_head_weights(hub: Any, backbone: Backbone, prompts: list[str]) -> list[np.ndarray]:
    """The head's kernel and bias for ``prompts``: scale times the normalised text embeddings, no bias."""
    kernel = logit_scale(hub, backbone) * text_embeddings(hub, backbone, prompts).T
    return [kernel.astype(np.float32), np.zeros(len(prompts), dtype=np.float32)]
