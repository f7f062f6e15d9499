"""The advice is the default recipe: a backbone and size this machine trains in minutes with weights it
has (ResNet50 at 224 px with a GPU), and epochs that follow the dataset's size."""

import argparse

import pytest

from core.datasets.ingest import import_archive
from core.store.workspace import Workspace
from core.training import advice
from core.training.estimate import has_gpu
from core.training.presets import preset_values
from tests.builders import make_zip, separable


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return Workspace.open(tmp_path / "ws")


def test_on_a_cpu_the_light_backbone_is_one_whose_weights_are_here(ws, tmp_path):
    picked = advice.advise(ws, n_train=300, n_val=60, median_side=400, gpu=False)
    assert (picked.backbone, picked.size) == ("mobilenet_v2_0.35", 160)  # bundled: works offline at any size
    models = tmp_path / "keras" / "models"
    models.mkdir(parents=True)
    (models / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_160_no_top.h5").write_bytes(b"x")
    assert advice.advise(ws, 300, 60, 400, gpu=False).backbone == "mobilenet_v2_1.0"  # downloaded before
    assert advice.advise(ws, 300, 60, 120, gpu=False).backbone == "mobilenet_v2_0.35"  # not at 128 px
    on_gpu = advice.advise(ws, 300, 60, 400, gpu=True)
    assert (on_gpu.backbone, on_gpu.size) == ("resnet50", 224)  # the product's default where it is worth it


def test_the_recipe_and_its_minutes_follow_the_datasets_size(ws):
    small = advice.advise(ws, n_train=245, n_val=60, median_side=300, gpu=False)
    large = advice.advise(ws, n_train=5000, n_val=600, median_side=300, gpu=False)
    # The balanced epochs at every size: a shorter recipe for small sets was measured worse (BENCHMARKS.md).
    assert small.epochs == large.epochs == {"head_epochs": 15, "fine_tune_epochs": 10}
    assert small.params["minutes"] < large.params["minutes"]
    assert preset_values("balanced", small.values())["backbone"] == "mobilenet_v2_0.35"
    assert preset_values("best", small.values())["backbone"] == "resnet50"  # a preset of its own


def test_the_cli_defaults_are_the_advice_and_flags_given_win(ws, tmp_path):
    from core.cli.main import build_parser
    from core.cli.training import config_from_args

    colours = {"红": (200, 60, 60), "蓝": (60, 60, 200)}
    import_archive(ws, make_zip(tmp_path / "c.zip", separable(colours, 12)), name="颜色")
    args = build_parser().parse_args(["train", "--dataset", "颜色"])
    assert isinstance(args, argparse.Namespace)
    config = config_from_args(args, ws)
    # Written out, not asked of advise_dataset() (the function the CLI calls): 24 images of 40 px on this
    # CPU, no downloaded weights -> the bundled MobileNetV2 x0.35 at the smallest size, the balanced epochs.
    backbone, size = ("resnet50", 224) if has_gpu() else ("mobilenet_v2_0.35", 96)
    expected = {"backbone": backbone, "image_size": size, "head_epochs": 15, "fine_tune_epochs": 10}
    assert {k: getattr(config, k) for k in expected} == expected
    given = config_from_args(build_parser().parse_args(["train", "--dataset", "颜色", "--backbone", "vgg16",
                                                        "--head-epochs", "7"]), ws)  # fmt: skip
    assert (given.backbone, given.head_epochs, given.image_size) == ("vgg16", 7, expected["image_size"])
    given = config_from_args(
        build_parser().parse_args(["train", "--dataset", "颜色", "--backbone", "dinov2_small"]), ws
    )
    assert given.image_size == (224 if has_gpu() else 98)  # the advised 96 px, fitted to 14 px patches


def test_the_cpu_advice_prices_a_foundation_backbone_and_the_best_preset_takes_one_on_a_gpu(ws, monkeypatch):
    picked = advice.advise(ws, n_train=5000, n_val=1000, median_side=400, gpu=False)
    # 6,000 images x 6.1 GMACs (DINOv2-S/14 at 224 px) / (70 GMACs/s x 2 cores) = 261 s: 4 minutes
    cores = advice.usable_cpus()
    assert picked.params["foundation_minutes"] == round(6000 * 6.1 / (70.0 * cores) / 60)
    assert picked.params["foundation"] == "DINOv2 ViT-S/14"
    import core.training.presets as presets

    monkeypatch.setattr(presets, "has_gpu", lambda: True)  # this machine's device, not the preset's rule
    assert preset_values("best")["backbone"] == "dinov2_with_registers_base"
    monkeypatch.setattr(presets, "has_gpu", lambda: False)
    assert preset_values("best")["backbone"] == "resnet50"
