"""The advice is the default recipe: a backbone and size this machine trains in minutes with weights it
has (ResNet50 at 224 px with a GPU), and epochs that follow the dataset's size."""

import argparse
import math

import pytest

from core.datasets.ingest import import_archive
from core.runs.config import Planning
from core.store.workspace import Workspace
from core.training import advice
from core.training.estimate import has_gpu
from core.training.presets import preset_values
from tests.builders import make_zip, separable


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return Workspace.open(tmp_path / "ws")


def counts(train: int, val: int, test: int = 0) -> dict[str, int]:
    return {"train": train, "val": val, "test": test}


def test_on_a_cpu_the_light_backbone_is_one_whose_weights_are_here(ws, tmp_path):
    picked = advice.advise(ws, counts(300, 60), median_side=400, gpu=False)
    # bundled: works offline at any size; the middle of the sizes the run tries (160, 224, 288)
    assert (picked.backbone, picked.size, picked.params["sizes"]) == ("mobilenet_v2_0.35", 224, "160, 224, 288")
    models = tmp_path / "keras" / "models"
    models.mkdir(parents=True)
    for size in (160, 224):
        (models / f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5").write_bytes(b"x")
    assert advice.advise(ws, counts(300, 60), 400, gpu=False).backbone == "mobilenet_v2_0.35"  # not at 288 px
    assert advice.advise(ws, counts(300, 60), 200, gpu=False).backbone == "mobilenet_v2_0.35"  # 96, 128, 160
    for size in (96, 128):
        (models / f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5").write_bytes(b"x")
    assert advice.advise(ws, counts(300, 60), 200, gpu=False).backbone == "mobilenet_v2_1.0"  # downloaded before
    on_gpu = advice.advise(ws, counts(300, 60), 400, gpu=True)
    assert (on_gpu.backbone, on_gpu.size) == ("resnet50", 224)  # the product's default where it is worth it


def test_the_advice_is_a_measured_plan_whose_limit_is_its_figure(ws):
    picked = advice.advise(ws, counts(1073, 125, 140), median_side=400, gpu=False)
    values = picked.values()
    assert values["planning"] == Planning.MEASURED and values["max_minutes"] == picked.params["minutes"] > 0
    # the figure counts a feature pass per size tried, the fine-tuning epochs and the final predictions
    seconds = advice.measured_plan_seconds("mobilenet_v2_0.35", [160, 224, 288], counts(1073, 125, 140), 400,
                                           advice.CPU_GMACS_PER_CORE * advice.usable_cpus(), advice.usable_cpus())  # fmt: skip
    assert picked.params["minutes"] == math.ceil(seconds / 60)
    fewer = advice.measured_plan_seconds("mobilenet_v2_0.35", [160], counts(1073, 125, 140), 400,
                                         advice.CPU_GMACS_PER_CORE * advice.usable_cpus(), advice.usable_cpus())  # fmt: skip
    assert fewer < seconds


def test_the_recipe_and_its_minutes_follow_the_datasets_size(ws):
    small = advice.advise(ws, counts(245, 60), median_side=300, gpu=False)
    large = advice.advise(ws, counts(5000, 600), median_side=300, gpu=False)
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
    # CPU, no downloaded weights -> the bundled MobileNetV2 x0.35 at the smallest size, the balanced epochs,
    # a measured plan with a time limit.
    backbone, size = ("resnet50", 96) if has_gpu() else ("mobilenet_v2_0.35", 96)
    expected = {"backbone": backbone, "image_size": size, "head_epochs": 15, "fine_tune_epochs": 10,
                "planning": Planning.MEASURED}  # fmt: skip
    assert {k: getattr(config, k) for k in expected} == expected and config.max_minutes >= 1
    given = config_from_args(build_parser().parse_args(["train", "--dataset", "颜色", "--backbone", "vgg16",
                                                        "--head-epochs", "7"]), ws)  # fmt: skip
    assert (given.backbone, given.head_epochs, given.image_size) == ("vgg16", 7, expected["image_size"])
    # settings given by hand are trained as given: no plan, no time limit (unless asked for)
    assert (given.planning, given.max_minutes) == (Planning.FIXED, 0.0)
    given = config_from_args(build_parser().parse_args(["train", "--dataset", "颜色", "--image-size", "128",
                                                        "--planning", "measured"]), ws)  # fmt: skip
    assert (given.planning, given.max_minutes) == (Planning.MEASURED, 0.0)
    seeded = config_from_args(build_parser().parse_args(["train", "--dataset", "颜色", "--seed", "3"]), ws)
    assert seeded.planning == Planning.MEASURED  # a seed is not a hand-chosen recipe
    given = config_from_args(
        build_parser().parse_args(["train", "--dataset", "颜色", "--backbone", "dinov2_small"]), ws
    )
    assert given.image_size == (224 if has_gpu() else 98)  # the advised 96 px, fitted to 14 px patches


def test_the_cpu_advice_prices_a_foundation_backbone_and_the_best_preset_takes_one_on_a_gpu(ws, monkeypatch):
    picked = advice.advise(ws, counts(5000, 1000), median_side=400, gpu=False)
    # 6,000 images x 6.1 GMACs (DINOv2-S/14 at 224 px) / (70 GMACs/s x 2 cores) = 261 s: 4 minutes
    cores = advice.usable_cpus()
    assert picked.params["foundation_minutes"] == round(6000 * 6.1 / (70.0 * cores) / 60)
    assert picked.params["foundation"] == "DINOv2 ViT-S/14"
    import core.training.presets as presets

    monkeypatch.setattr(presets, "has_gpu", lambda: True)  # this machine's device, not the preset's rule
    assert preset_values("best")["backbone"] == "dinov2_with_registers_base"
    monkeypatch.setattr(presets, "has_gpu", lambda: False)
    assert preset_values("best")["backbone"] == "resnet50"
