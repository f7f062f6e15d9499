"""Foundation backbones from KerasHub (DINOv2, SigLIP, CLIP) and zero-shot runs, with KerasHub's real classes
at tiny random configurations saved as local preset folders (``tests.presets``): nothing is downloaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from core.datasets.editing import describe_class
from core.datasets.ingest import import_archive
from core.errors import ConfigError, TrainingError
from core.evaluation.gradcam import gradcam
from core.evaluation.suggestions import suggestion_run
from core.export.config import ExportConfig
from core.export.exporter import export_folder, export_run
from core.runs.backbones import BACKBONES, Family, get_backbone
from core.runs.config import TrainConfig
from core.store.workspace import Workspace
from core.training import foundation, zero_shot
from core.training.jobs import train_here
from core.training.model import HEAD_LAYER, build_model, load_run_model, set_unfrozen
from tests.builders import COLOURS, make_zip, separable, tiny_config

DESCRIPTIONS = {"红": "红色的方块", "蓝": "蓝色的方块", "绿": "绿色的方块"}


def hub_config(dataset: str, preset: Path, **overrides: object) -> TrainConfig:
    return tiny_config(dataset, **{"backbone": str(preset), "weights": "imagenet", "image_size": 0, "batch_size": 8,
                                   **overrides})  # fmt: skip


@pytest.fixture(scope="module")
def hub_runs(hub_presets, tmp_path_factory) -> tuple[Workspace, dict[str, str]]:
    """One workspace (颜色, described) with a run per family: DINOv2 trained (head on cached features, then
    its top two blocks fine-tuned), SigLIP zero-shot, CLIP with a text head trained one epoch."""
    root = tmp_path_factory.mktemp("hub")
    ws = Workspace.open(root / "ws")
    import_archive(ws, make_zip(root / "c.zip", separable(COLOURS, 8)), name="颜色")
    for name, text in DESCRIPTIONS.items():
        describe_class(ws, "颜色", name, text)
    made = {
        "dinov2": hub_config("颜色", hub_presets["dinov2"], head_epochs=2, fine_tune_epochs=1, unfreeze="2"),
        "siglip": zero_shot.zero_shot_config("颜色", str(hub_presets["siglip"])),
        "clip": hub_config("颜色", hub_presets["clip"], text_head=True, head_epochs=1, fine_tune_epochs=0),
    }
    ids = {}
    for family, config in made.items():
        run = train_here(ws, config)
        assert run.status == "completed", run.error
        ids[family] = run.id
    return ws, ids


def test_a_preset_folder_names_its_family_and_sizes(hub_presets):
    dino = get_backbone(str(hub_presets["dinov2"]))
    assert (dino.family, dino.default_size, dino.patch, dino.fixed_size) == (Family.DINOV2, 56, 14, False)
    siglip = get_backbone(str(hub_presets["siglip"]))
    assert (siglip.family, siglip.default_size, siglip.fixed_size, siglip.family.image_text) == (
        Family.SIGLIP, 64, True, True,
    )  # fmt: skip
    assert get_backbone(str(hub_presets["clip"])).family is Family.CLIP
    handle = get_backbone("hf://someone/siglip2_base_patch16_256")
    assert (handle.family, handle.default_size, handle.patch) == (Family.SIGLIP, 256, 16)
    with pytest.raises(ConfigError, match="Unknown backbone"):
        get_backbone("/no/such/folder")
    for name in ("dinov2_small", "dinov2_with_registers_base", "siglip2_base_patch16_224", "clip_vit_base_patch16"):
        assert BACKBONES[name].foundation


def test_sizes_the_family_cannot_take_are_refused_with_the_nearest(hub_presets):
    with pytest.raises(ConfigError) as refused:
        tiny_config("d", backbone="dinov2_small", weights="imagenet", image_size=160)
    assert refused.value.params == {"backbone": "DINOv2 ViT-S/14", "patch": 14, "value": 160, "below": 154,
                                    "above": 168}  # fmt: skip
    with pytest.raises(ConfigError, match="224 px images only"):
        tiny_config("d", backbone="clip_vit_base_patch16", weights="imagenet", image_size=256)
    assert BACKBONES["dinov2_small"].fit_size(160) == 154 and BACKBONES["siglip2_base_patch16_256"].fit_size(96) == 256
    with pytest.raises(ConfigError, match="text tower"):
        tiny_config("d", backbone="dinov2_small", weights="imagenet", image_size=0, text_head=True)
    with pytest.raises(ConfigError, match="weights"):
        tiny_config("d", backbone="dinov2_small", image_size=0, weights=str(hub_presets["dinov2"] / "model.weights.h5"))
    with pytest.raises(ConfigError, match="name"):
        zero_shot.zero_shot_config("d", "clip_vit_base_patch16", template="a photo")
    assert zero_shot.zero_shot_config("d").zero_shot and not tiny_config("d").zero_shot


@pytest.mark.parametrize("family", ["dinov2", "siglip", "clip"])
def test_the_pixels_the_backbone_receives_are_the_presets_own_preprocessing(hub_presets, family):
    import keras_hub

    backbone = get_backbone(str(hub_presets[family]))
    size = backbone.default_size
    built = build_model(backbone.name, n_classes=3, size=size, weights="imagenet", dropout=0.0, seed=0)
    image = np.random.default_rng(1).integers(0, 256, (2, size, size, 3)).astype("float32")
    ours = keras.ops.convert_to_numpy(built.model.get_layer("preprocess")(image))
    theirs = keras.ops.convert_to_numpy(keras_hub.layers.ImageConverter.from_preset(backbone.preset)(image))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    assert np.ptp(ours) > 1  # scaled, not left at 0-255 or flattened


def test_pooling_is_each_familys_linear_probe_feature(hub_presets):
    """Worked from KerasHub's own backbone for the same pixels; SigLIP's image tower is loaded alone here
    (no text tower without a text head), and must give what the whole preset gives."""
    import keras_hub

    rng = np.random.default_rng(2)
    for family in ("dinov2", "siglip", "clip"):
        backbone = get_backbone(str(hub_presets[family]))
        size = backbone.default_size
        built = build_model(backbone.name, n_classes=3, size=size, weights="imagenet", dropout=0.0, seed=0)
        images = rng.integers(0, 256, (2, size, size, 3)).astype("float32")
        features = keras.Model(built.model.inputs, built.model.get_layer("pool").output)
        ours = keras.ops.convert_to_numpy(features(images))
        hub = keras_hub.models.Backbone.from_preset(backbone.preset)  # KerasHub's own loading, whole
        pixels = keras.ops.convert_to_numpy(built.model.get_layer("preprocess")(images))
        if family == "dinov2":  # class token beside the mean of the patch tokens, the 4 registers left out
            tokens = keras.ops.convert_to_numpy(hub({"images": pixels}))
            expected = np.concatenate([tokens[:, 0], tokens[:, 5:].mean(axis=1)], axis=-1)
        elif family == "siglip":  # the image tower's pooled output
            assert isinstance(foundation.load_hub(backbone, load_weights=True, text=False), foundation.VisionOnly)
            expected = keras.ops.convert_to_numpy(hub.vision_encoder({"images": pixels}))
        else:  # the projected image embedding
            expected = keras.ops.convert_to_numpy(hub.get_vision_embeddings(pixels))
        np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5, err_msg=family)


def test_prompts_follow_the_names_language_and_the_template():
    assert zero_shot.prompt("红", "红色的方块") == "一张红的照片。红色的方块"
    assert zero_shot.prompt("shirt", "") == "a photo of shirt."
    assert zero_shot.prompt("shirt", "with sleeves", "{name}: {description}") == "shirt: with sleeves"


@pytest.mark.parametrize("family", ["siglip", "clip"])
def test_zero_shot_scores_are_the_towers_cosine_similarities(hub_presets, family):
    """The head's probabilities, worked by hand from KerasHub's own preprocessor and towers: softmax over the
    classes of exp(logit_scale) times the cosine of image and prompt embeddings."""
    import keras_hub

    backbone = get_backbone(str(hub_presets[family]))
    prompts = [zero_shot.prompt(name, text) for name, text in DESCRIPTIONS.items()]
    built = build_model(backbone.name, n_classes=3, size=backbone.default_size, weights="imagenet", dropout=0.0,
                        seed=0, prompts=prompts)  # fmt: skip
    images = np.random.default_rng(3).integers(0, 256, (4, backbone.default_size, backbone.default_size, 3))
    ours = np.asarray(built.model.predict(images.astype("float32"), verbose=0))
    cls = keras_hub.models.SigLIPPreprocessor if family == "siglip" else keras_hub.models.CLIPPreprocessor
    packed = cls.from_preset(backbone.preset)({"prompts": prompts, "images": images.astype("float32")})
    hub = foundation.load_hub(backbone, load_weights=True)
    text = np.asarray(hub.get_text_embeddings(packed["token_ids"]))
    image = np.asarray(hub.get_vision_embeddings(packed["images"]))
    cos = (image / np.linalg.norm(image, axis=1, keepdims=True)) @ (
        text / np.linalg.norm(text, axis=1, keepdims=True)
    ).T
    head = hub.siglip_head if family == "siglip" else hub.clip_head
    logits = np.exp(float(np.asarray(head.logit_scale))) * cos
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(ours, expected / expected.sum(axis=1, keepdims=True), rtol=1e-4, atol=1e-5)


def test_a_head_of_known_images_embeddings_predicts_those_images(hub_presets):
    """Constructed case: the 'text' embeddings set to three images' own embeddings; each image is then its
    own class (cosine 1 with itself, less with the others)."""
    backbone = get_backbone(str(hub_presets["siglip"]))
    size = backbone.default_size
    built = build_model(backbone.name, n_classes=3, size=size, weights="imagenet", dropout=0.0, seed=0,
                        prompts=["a", "b", "c"])  # fmt: skip
    images = np.stack([np.full((size, size, 3), c, dtype="float32") for c in COLOURS.values()])
    images += np.random.default_rng(4).integers(0, 40, images.shape)
    embed = keras.Model(built.model.inputs, built.model.get_layer("normalize").output)
    known = np.asarray(embed(images))
    built.model.get_layer(HEAD_LAYER).set_weights([20.0 * known.T, np.zeros(3, "float32")])
    assert np.argmax(built.model.predict(images, verbose=0), axis=1).tolist() == [0, 1, 2]


@pytest.mark.slow  # trains, exports or starts a process: the whole suite's
def test_each_family_trains_evaluates_explains_exports_and_reloads(hub_runs):
    ws, ids = hub_runs
    from core.runs import store as runs

    for family, run_id in ids.items():
        run = runs.get_run(ws, run_id)
        assert run.weights_used.startswith(f"preset:{run.config.backbone}#"), run.weights_used
        assert run.final["test_accuracy"] is not None
        model = load_run_model(ws, run_id)  # safe_mode, KerasHub's layers registered by the loader
        size = int(model.input_shape[1])
        pixels = np.random.default_rng(5).integers(0, 256, (size, size, 3)).astype("float32")
        maps = [gradcam(model, pixels, c)[0] for c in range(3)]
        assert maps[0].shape == (4, 4), family  # the patch grid: 56/14 and 64/16
        assert any(not np.allclose(maps[0], m) for m in maps[1:]), f"{family}: the map ignores the class"
    assert runs.get_run(ws, ids["siglip"]).epochs_run == 0  # zero-shot: nothing trained
    assert runs.get_run(ws, ids["dinov2"]).device["unfrozen_layers"] == 2
    result = export_run(ws, ExportConfig(run=ids["dinov2"], parity_images=6))
    offered = {c.variant: c for c in result.checked}
    for variant in ("keras", "savedmodel", "tflite_float32"):
        assert offered[variant].offered and offered[variant].agreement == 1.0, variant
    # ONNX: DINOv2's exact GELU is an Erfc that tf2onnx cannot write at opset 15: not offered, and why
    assert not offered["onnx"].offered and offered["onnx"].reason["key"] == "exp.convert_failed"
    assert "Erfc" in offered["onnx"].reason["params"]["reason"]
    for family in ("siglip", "clip"):  # their tanh-approximated GELU converts
        (onnx,) = export_run(ws, ExportConfig(run=ids[family], variants=("onnx",), parity_images=6)).checked
        assert onnx.offered and onnx.agreement == 1.0, (family, onnx)
    assert result.predict_py["agrees"]
    card = export_folder(ws, ids["dinov2"]) / "model_card.md"
    assert "keras-hub" in card.read_text(encoding="utf-8")
    # A foundation run teaches a small student; the suggestions come from a trained run, not the zero-shot one
    student = train_here(
        ws, tiny_config("颜色", teacher=ids["dinov2"], head_epochs=1, fine_tune_epochs=0, batch_size=8)
    )
    assert student.status == "completed", student.error
    assert suggestion_run(ws, "颜色").id == student.id
    runs.delete_run(ws, student.id)
    runs.delete_run(ws, ids["dinov2"])
    runs.delete_run(ws, ids["clip"])
    assert suggestion_run(ws, "颜色").id == ids["siglip"]  # no trained run left: the zero-shot run's


def test_a_fine_tuned_transformer_unfreezes_its_top_blocks_and_its_pooling(hub_presets):
    backbone = get_backbone(str(hub_presets["clip"]))
    built = build_model(backbone.name, n_classes=3, size=64, weights="none", dropout=0.0, seed=0)
    assert not built.model.get_layer("pooling").trainable
    assert set_unfrozen(built, "2") == 2
    trainable = [layer.name for layer in built.base.layers if layer.trainable and layer.weights]
    assert trainable[-2:] == ["clip_vision_encoder_encoder_block_1", "clip_vision_encoder_layer_norm"]
    assert len(trainable) == 2 and built.model.get_layer("pooling").trainable


def test_mixed_precision_builds_the_transformer_in_float16_with_a_float32_head(hub_presets):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        backbone = get_backbone(str(hub_presets["dinov2"]))
        built = build_model(backbone.name, n_classes=3, size=56, weights="imagenet", dropout=0.0, seed=0)
        out = built.model(np.zeros((1, 56, 56, 3), "float32"))
        assert (
            built.base.layers[2].compute_dtype == "float16" and keras.backend.standardize_dtype(out.dtype) == "float32"
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_offline_a_preset_that_cannot_download_fails_naming_it_and_the_way_to_fetch_it(offline):
    with pytest.raises(TrainingError) as failed:
        build_model("dinov2_small", n_classes=2, size=56, weights="imagenet", dropout=0.0, seed=0)
    assert failed.value.key == "err.preset_offline"
    assert failed.value.params["preset"] == "dinov2_small"
    assert "fetch-preset dinov2_small" in failed.value.params["command"]


@pytest.mark.slow  # trains, exports or starts a process: the whole suite's
def test_a_zero_shot_run_needs_no_labelled_image(hub_presets, tmp_path):
    """Classes with descriptions and no images yet take part; the CLI prints the prompts and the scores."""
    from core.cli.main import main
    from core.datasets.editing import add_class

    ws = Workspace.open(tmp_path / "ws")
    import_archive(ws, make_zip(tmp_path / "c.zip", separable(COLOURS, 4)), name="颜色")
    add_class(ws, "颜色", "紫", "紫色的方块")
    out = tmp_path / "out.json"
    argv = [
        "--workspace",
        str(ws.root),
        "--json",
        "zero-shot",
        "--dataset",
        "颜色",
        "--model",
        str(hub_presets["siglip"]),
    ]
    with open(out, "w") as fh:
        sys.stdout, saved = fh, sys.stdout
        try:
            code = main(argv)
        finally:
            sys.stdout = saved
    payload = json.loads(out.read_text())
    assert code == 0 and payload["status"] == "completed", payload
    assert payload["prompts"]["紫"] == "一张紫的照片。紫色的方块" and payload["val_accuracy"] is not None


@pytest.mark.slow  # trains, exports or starts a process: the whole suite's
def test_keras_hub_stays_out_of_a_process_that_trains_another_backbone(tmp_path):
    code = (
        "import sys\n"
        "from core.training.model import build_model, load_model_file\n"
        "from core.training.callbacks import save_atomic\n"
        "from pathlib import Path\n"
        "b = build_model('mobilenet_v2_0.35', n_classes=2, size=32, weights='none', dropout=0.0, seed=0)\n"
        f"save_atomic(b.model, Path({str(tmp_path / 'm.keras')!r}))\n"
        f"load_model_file(Path({str(tmp_path / 'm.keras')!r}))\n"
        "print('keras_hub' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_a_siglip_preset_without_its_image_tower_in_the_file_is_refused_not_left_random(hub_presets, tmp_path):
    import shutil

    import h5py

    broken = tmp_path / "siglip"
    shutil.copytree(hub_presets["siglip"], broken)
    with h5py.File(broken / "model.weights.h5", "r+") as f:
        f.move(foundation.VISION_WEIGHTS, "layers/renamed")
    with pytest.raises(ConfigError, match="cannot be read"):  # Keras refuses the missing variables
        foundation.load_hub(get_backbone(str(broken)), load_weights=True, text=False)
