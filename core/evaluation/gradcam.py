"""Grad-CAM (Selvaraju et al., 2017): where in the image the model looked for a class.

The classifier nests its backbone as one layer (``inputs -> preprocess -> base -> pool -> dropout ->
head``). Building a sub-model from the base's inner layers to the classifier's output fails with
"Graph disconnected", so the classifier is run layer by layer instead: the layers before the base,
the base itself (its output is the last convolutional feature map, since it was built without its
top), then the head on that map, all under one ``GradientTape`` that watches the feature map. The
class score is the head's logit (before softmax), as in the paper. Works for every backbone in the
``keras.applications`` backbone, because each one's headless output is its last feature map.

A foundation backbone (a vision transformer) has no convolutional map: its base ends at the last block's
tokens, one per image patch (after the class and register tokens). The same recipe runs on them: each
channel weighted by its mean gradient over the patch tokens, the weighted sum per token, ReLU, laid out
on the patch grid. The tokens are those entering the last block, as pytorch-grad-cam's ViT recipe takes
them: after it, CLIP's pooling reads the class token alone, so the patches' own outputs get no gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

# Opacity of the heatmap over the image when the user has not chosen one.
DEFAULT_ALPHA = 0.45


def _backbone(model: Any) -> Any:
    import keras

    from core.training.model import POOLING_MODEL

    nested = [layer for layer in model.layers if isinstance(layer, keras.Model) and layer.name != POOLING_MODEL]
    if len(nested) != 1:
        raise ValueError(f"expected one nested backbone in {model.name}, found {len(nested)}")
    return nested[0]


def gradcam(model: Any, pixels: np.ndarray, class_index: int | None = None) -> tuple[np.ndarray, int]:
    """The heatmap (feature-map height x width, 0..1) for ``class_index`` (default: the predicted
    class) of one image given as model input pixels (size x size x 3, 0-255); and that class."""
    import keras
    import tensorflow as tf

    from core.training.model import HEAD_LAYER

    base = _backbone(model)
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    at = layers.index(base)
    x = tf.convert_to_tensor(np.asarray(pixels, dtype=np.float32)[None])
    with tf.GradientTape() as tape:
        h = x
        for layer in layers[:at]:
            h = layer(h)
        if len(base.output.shape) == 3:  # a transformer's tokens: watch those entering its last block
            inner = [layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)]
            for layer in inner[:-2]:
                h = layer(h, training=False)
            fmap = h
            tape.watch(fmap)
            y = inner[-1](inner[-2](fmap, training=False))
        else:
            fmap = base(h, training=False)
            tape.watch(fmap)
            y = fmap
        for layer in layers[at + 1 :]:
            if layer.name == HEAD_LAYER:  # the logits: the head's affine part, before its softmax
                y = tf.matmul(tf.cast(y, tf.float32), tf.cast(layer.kernel, tf.float32)) + tf.cast(
                    layer.bias, tf.float32
                )
            else:
                y = layer(y, training=False)
        if class_index is None:
            class_index = int(tf.argmax(y[0]))
        score = y[:, class_index]
    grads = tf.cast(tape.gradient(score, fmap), tf.float32)
    fmap32 = tf.cast(fmap, tf.float32)
    if len(fmap32.shape) == 3:  # transformer tokens: keep the patches, laid out on their grid
        from core.training.foundation import patch_grid

        skip, side = patch_grid(int(fmap32.shape[1]))
        fmap32 = tf.reshape(fmap32[:, skip:, :], (-1, side, side, fmap32.shape[-1]))
        grads = tf.reshape(grads[:, skip:, :], (-1, side, side, grads.shape[-1]))
    weights = tf.reduce_mean(grads, axis=(1, 2))  # one weight per channel: its mean gradient
    cam = tf.nn.relu(tf.reduce_sum(fmap32 * weights[:, None, None, :], axis=-1))[0].numpy()
    top = float(cam.max())
    return (cam / top if top > 0 else cam).astype(np.float32), class_index


def _colour(values: np.ndarray) -> np.ndarray:
    """A blue-to-red (jet-like) colour map, 0..1 to RGB uint8."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    rgb = np.clip(1.5 - np.abs(4.0 * v - np.array([3.0, 2.0, 1.0])), 0.0, 1.0)
    return (rgb * 255).astype(np.uint8)


def overlay(pixels: np.ndarray, cam: np.ndarray, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """The heatmap, resized to the image, blended over it with opacity ``alpha``."""
    image = np.asarray(pixels, dtype=np.uint8)
    heat = Image.fromarray((np.clip(cam, 0, 1) * 255).astype(np.uint8)).resize(
        (image.shape[1], image.shape[0]), Image.Resampling.BILINEAR
    )
    coloured = _colour(np.asarray(heat, dtype=np.float32) / 255.0)
    return np.clip((1 - alpha) * image + alpha * coloured, 0, 255).astype(np.uint8)
