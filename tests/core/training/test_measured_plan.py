"""A measured plan (the advice's default): the run tries the sizes its images allow on the frozen base,
trains at the one its validation images score best, and fits its fine-tuning epochs into its time limit;
the chosen size is the run's size everywhere (its config, its folder's record, its saved model)."""

import json
import math

import keras
import numpy as np
import pytest

from core.datasets.ingest import import_archive
from core.i18n import render
from core.runs.backbones import get_backbone
from core.runs.config import Planning
from core.runs.folder import RunFolder
from core.store.workspace import Workspace
from core.training import features
from core.training import plan as plan_module
from core.training.jobs import train_here
from core.training.model import load_run_model
from core.training.pipeline import load_training_data
from core.training.plan import (
    MIN_HEAD_STEPS,
    fit_fine_tune_epochs,
    plan_line,
    size_candidates,
)
from tests.builders import COLOURS, make_zip, separable, tiny_config


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("measured")
    ws = Workspace.open(root / "ws")
    # 160 px images: the ladder's 96, 128 and 160 px are tried, never an upscaled 224
    import_archive(ws, make_zip(root / "c.zip", separable(COLOURS, 8, size=(160, 160))), name="colours")
    return ws


def measured(**overrides):
    settings = {"backbone": "mobilenet_v2_0.35", "image_size": 128, "planning": Planning.MEASURED,
                "batch_size": 8, "head_epochs": 3, "fine_tune_epochs": 3, **overrides}  # fmt: skip
    return tiny_config("colours", **settings)


def test_the_sizes_tried_follow_the_images_and_the_backbone():
    cnn = get_backbone("mobilenet_v2_0.35")
    assert size_candidates(cnn, 400) == [160, 224, 288]
    assert size_candidates(cnn, 230) == [128, 160, 224]
    assert size_candidates(cnn, 150) == [96, 128]  # never upscaled
    assert size_candidates(cnn, 40) == [96]  # the smallest, whatever the images
    assert size_candidates(get_backbone("dinov2_small"), 400) == [154, 224, 294]  # 14 px patches
    assert size_candidates(get_backbone("siglip2_base_patch16_224"), 400) == [224]  # its one size


def test_fine_tuning_epochs_fit_the_time_left_or_are_left_out():
    """(Too few images a class for fine-tuning: the Train page's test of a measured run.)"""
    assert fit_fine_tune_epochs(10, None, 30.0) == 10  # no time limit
    assert fit_fine_tune_epochs(10, 600.0, 30.0) == 10
    assert fit_fine_tune_epochs(10, 150.0, 30.0) == 5
    assert fit_fine_tune_epochs(10, 80.0, 30.0) == 0  # 2 epochs would only undo the head's fit
    assert fit_fine_tune_epochs(10, -5.0, 30.0) == 0


@pytest.fixture
def fine_tunes_here(monkeypatch):
    """Fine-tuning planned for this tiny set (its 5 training images a class are below the measured
    threshold): the tests of the sizes and of the time limit need a plan that fine-tunes."""
    monkeypatch.setattr(plan_module, "MIN_PER_CLASS_TO_FINE_TUNE", 1)


@pytest.mark.slow  # trains three sizes' heads and a run
def test_a_measured_run_trains_at_the_size_its_validation_images_score_best(ws, fine_tunes_here):
    run = train_here(ws, measured())
    plan = run.device["plan"]
    tried = plan["sizes"]
    assert [t["size"] for t in tried] == [96, 128, 160]
    best = max(tried, key=lambda t: (t["val_accuracy"], -t["val_log_loss"], -t["size"]))
    assert run.config.size == best["size"] and run.config.planning == Planning.MEASURED
    assert run.config.fine_tune_epochs == 3  # no time limit: every epoch asked for
    # a small training split: the head trains for at least MIN_HEAD_STEPS steps (early stopping may end it)
    n_train = len(load_training_data(ws, "colours").train)
    assert run.config.head_epochs == math.ceil(MIN_HEAD_STEPS / math.ceil(n_train / 8)) > 3
    assert run.status == "completed" and 3 < run.epochs_run <= run.config.head_epochs + 3
    # the size it trained at is the size it serves at, and its folder's record says so too
    assert load_run_model(ws, run.id).input_shape[1:3] == (best["size"], best["size"])
    record = json.loads(RunFolder.of(ws, run.id).config.read_text(encoding="utf-8"))
    assert record["config"]["image_size"] == best["size"]
    line = plan_line(plan, "en")
    assert f"Input size {best['size']} px" in line and "96 px" in line and "3 epochs of about" in line
    assert f"{best['size']} 像素" in plan_line(plan, "zh")
    # each size's features are in the cache: the head phase read the chosen size's again, not recomputed
    data = load_training_data(ws, "colours")
    for size in (96, 128, 160):
        key = features.cache_key(measured(image_size=size), data)
        assert features.cache_path(ws, key, data.dataset_id).exists()
    keras.backend.clear_session()


@pytest.mark.slow  # trains a run
def test_a_time_limit_too_short_for_fine_tuning_keeps_the_head_alone(ws, fine_tunes_here):
    run = train_here(ws, measured(max_minutes=0.01, fine_tune_epochs=10))
    plan = run.device["plan"]
    assert plan["then"]["key"] == "plan.no_fine_tune" and run.config.fine_tune_epochs == 0
    assert "No fine-tuning" in render(plan["then"], "en")
    assert run.final["val_accuracy"] is not None and np.isfinite(run.final["val_log_loss"])
    keras.backend.clear_session()


@pytest.mark.slow  # trains a run
def test_a_measured_plan_that_cannot_measure_trains_as_given_without_the_plans_limit(ws):
    """Without the feature cache (as with a teacher or a text head) there is nothing to measure on: the
    run trains its settings as given, and the advice's minutes, the plan's budget, do not cut it short."""
    run = train_here(ws, measured(feature_cache=False, head_epochs=2, fine_tune_epochs=0, max_minutes=1e-4))
    assert (run.config.planning, run.config.max_minutes) == (Planning.FIXED, 0.0) and "plan" not in run.device
    assert run.status == "completed" and run.epochs_run == 2
    keras.backend.clear_session()
