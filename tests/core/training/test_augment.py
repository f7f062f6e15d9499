"""The fused augmentation layer: what each strength does, and its stateless seeding."""

import numpy as np
import pytest
import tensorflow as tf

from core.errors import ConfigError
from core.runs.config import AugmentConfig
from core.training.augment import RandomAugment, build_augmenter
from core.training.pipeline import Split, make_dataset
from tests.builders import image_bytes, write

OFF = dict(flip=False, rotation=0.0, zoom=0.0, translation=0.0, contrast=0.0, brightness=0.0)


def only(**strengths) -> RandomAugment:
    return RandomAugment(AugmentConfig(**{**OFF, **strengths}))


def noise(n=8, size=33, seed=0):
    return tf.constant(np.random.default_rng(seed).integers(0, 256, (n, size, size, 3)).astype(np.float32))


def test_same_seed_same_images_other_seed_other_images():
    images, layer = noise(), RandomAugment(AugmentConfig.preset("strong"))
    first, again = layer(images, tf.constant([3, 4])), layer(images, tf.constant([3, 4]))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, layer(images, tf.constant([3, 5])))
    assert float(tf.reduce_min(first)) >= 0 and float(tf.reduce_max(first)) <= 255


def test_flip_mirrors_some_images_and_keeps_the_others_exactly():
    images = noise(16).numpy()
    out = only(flip=True)(images, tf.constant([0, 1])).numpy()
    mirrored = [np.array_equal(out[i], images[i, :, ::-1]) for i in range(16)]
    kept = [np.array_equal(out[i], images[i]) for i in range(16)]
    assert all(m != k for m, k in zip(mirrored, kept, strict=True)) and 0 < sum(mirrored) < 16


@pytest.mark.parametrize("strengths", [{"rotation": 0.2}, {"zoom": 0.3}, {"flip": True, "rotation": 0.1, "zoom": 0.2}])
def test_rotation_zoom_and_flip_turn_about_the_centre(strengths):
    """A bright centre pixel stays at the centre; everything else moves."""
    images = np.zeros((8, 33, 33, 3), np.float32)
    images[:, 16, 16] = 255
    images[:, 2:6, 2:10] = 100  # an off-centre patch that must move
    out = only(**strengths)(images, tf.constant([7, 7])).numpy()
    assert (out[:, 16, 16] > 100).all()
    assert not np.allclose(out[:, 2:6, 2:10], 100)


def test_translation_moves_content_by_at_most_its_strength():
    images = np.zeros((16, 40, 40, 3), np.float32)
    images[:, 20, 20] = 255
    out = only(translation=0.1)(images, tf.constant([1, 2])).numpy()
    ys, xs = np.unravel_index(out[..., 0].reshape(16, -1).argmax(axis=1), (40, 40))
    assert (np.abs(ys - 20) <= 4).all() and (np.abs(xs - 20) <= 4).all()
    assert (ys != 20).any() or (xs != 20).any()


def test_contrast_keeps_the_mean_and_brightness_shifts_it():
    images = tf.constant(np.random.default_rng(1).uniform(60, 190, (8, 16, 16, 3)).astype(np.float32))
    contrast = only(contrast=0.4)(images, tf.constant([0, 0])).numpy()
    np.testing.assert_allclose(contrast.mean(axis=(1, 2)), images.numpy().mean(axis=(1, 2)), atol=1e-3)
    assert not np.allclose(contrast, images)
    bright = only(brightness=0.1)(images, tf.constant([0, 0])).numpy()
    shift = (bright - images.numpy()).reshape(8, -1)
    np.testing.assert_allclose(shift.min(axis=1), shift.max(axis=1), atol=1e-3)  # one shift per image
    assert (np.abs(shift[:, 0]) <= 25.5 + 1e-3).all() and np.ptp(shift[:, 0]) > 0


def test_none_builds_no_layer_and_strengths_are_checked():
    assert build_augmenter(AugmentConfig.preset("none")) is None
    with pytest.raises(ConfigError) as info:
        AugmentConfig(rotation=0.7)
    assert info.value.params["field"] == "augment.rotation"


def test_pipeline_augments_in_parallel_yet_reproducibly(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = [
        str(
            write(
                tmp_path / f"{i}.png", image_bytes(Image.fromarray(rng.integers(0, 256, (40, 40, 3), np.uint8)), "PNG")
            )
        )
        for i in range(12)
    ]
    split = Split(paths, [i % 2 for i in range(12)])
    layer = RandomAugment(AugmentConfig.preset("standard"))

    def epochs(seed):
        tf.keras.utils.set_random_seed(0)
        ds = make_dataset(
            split,
            n_classes=2,
            size=32,
            resize="crop",
            batch_size=4,
            training=True,
            seed=seed,
            cache=True,
            augmenter=layer,
        )
        return [np.concatenate([x.numpy() for x, _ in ds]) for _ in range(2)]

    first, again = epochs(5), epochs(5)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], first[1])  # each epoch draws new transformations
    assert not np.allclose(first[0], epochs(6)[0])


def test_the_xla_warp_matches_tensorflows_projective_transform_kernel():
    from core.training.augment import _affine_warp

    rng = np.random.default_rng(3)
    images = tf.constant(rng.uniform(0, 255, (6, 37, 29, 3)).astype(np.float32))
    angle, scale = rng.uniform(-1, 1, 6), rng.uniform(0.7, 1.4, 6)
    affine = np.stack(
        [
            np.cos(angle) * scale,
            -np.sin(angle) * scale,
            rng.uniform(-9, 9, 6),
            np.sin(angle) * scale,
            np.cos(angle) * scale,
            rng.uniform(-9, 9, 6),
        ],
        axis=1,
    ).astype(np.float32)
    expected = tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=np.concatenate([affine, np.zeros((6, 2), np.float32)], axis=1),
        output_shape=[37, 29],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )
    np.testing.assert_allclose(tf.function(_affine_warp, jit_compile=True)(images, affine), expected, atol=0.05)
