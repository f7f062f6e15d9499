"""Foundation backbones and zero-shot models in the pages: the Train form's preset folder, the zero-shot
expander (its prompts, its run, offline), the Label page's description scores and their re-scoring."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.datasets.editing import describe_class
from core.datasets.ingest import import_archive
from core.jobs.store import JobStatus
from core.runs import store as runs
from core.runs.config import TrainConfig
from core.runs.predictions import load_predictions
from core.store.workspace import Workspace
from core.training.jobs import train_here
from core.training.zero_shot import zero_shot_config
from tests.builders import TWO_COLOURS, make_zip, separable
from tests.jobs import wait_for
from ui.common import md_text

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTIONS = {"红": "红色的方块", "蓝": "蓝色的方块"}


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELTUNE_HOME", str(tmp_path / "ws"))
    monkeypatch.chdir(ROOT)
    ws = Workspace.open(tmp_path / "ws")
    import_archive(ws, make_zip(tmp_path / "c.zip", separable(TWO_COLOURS, 8)), name="颜色")
    for name, text in DESCRIPTIONS.items():
        describe_class(ws, "颜色", name, text)
    return ws


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.run()
    at.switch_page(f"pages/{name}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_form_takes_a_preset_folder_and_says_which_sizes_it_refuses(ws, hub_presets, monkeypatch):
    monkeypatch.setenv("LABELTUNE_SERVER_ROOTS", str(hub_presets["dinov2"].parent))  # a folder the admin allows
    at = page("train")
    at.selectbox(key="tr_backbone").set_value("").run()
    at.text_input(key="tr_backbone_path").input(str(hub_presets["dinov2"])).run()
    at.number_input(key="tr_image_size").set_value(64).run()
    assert "multiple of 14" in at.error[0].value and "56 or 70" in at.error[0].value
    assert at.button(key="start").disabled
    at.number_input(key="tr_image_size").set_value(56).run()
    assert not at.error and not at.button(key="start").disabled


@pytest.mark.slow  # waits for a worker process
def test_the_zero_shot_expander_shows_the_prompts_and_fails_offline_naming_the_preset(ws, offline):
    at = page("train")
    prompts = at.dataframe[-1].value
    assert prompts.iloc[:, 1].tolist() == ["一张红的照片。红色的方块", "一张蓝的照片。蓝色的方块"]
    at.text_input(key="zero_template").input("{name}: {description}").run()
    assert at.dataframe[-1].value.iloc[0, 1] == "红: 红色的方块"
    at.button(key="zero_start").click().run()
    (run,) = runs.list_runs(ws, "颜色")
    assert run.config.zero_shot and run.config.backbone == "siglip2_base_patch16_224"
    job = wait_for(ws, run.job.id, lambda j: not j.live, seconds=180)
    assert job.status is JobStatus.FAILED and job.error["key"] == "err.preset_offline"
    assert not runs.get_run(ws, run.id).model_path  # never a model from random weights


@pytest.mark.slow  # waits for a worker process
def test_the_label_page_scores_each_description_and_scores_again(ws, hub_presets):
    first = train_here(ws, zero_shot_config("颜色", str(hub_presets["siglip"])))
    assert first.status == "completed", first.error
    at = page("label")
    at.button_group(key="label_view").set_value("classes").run()
    table = at.dataframe[0].value
    assert {"红", "蓝"} == set(table.iloc[:, 0]) and table.shape[1] == 5
    assert all(v.endswith("%") or v == "–" for v in table.iloc[:, 3])
    assert md_text(first.label) in " ".join(c.value for c in at.caption)
    at.button(key="rescore").click().run()
    again = [r for r in runs.list_runs(ws, "颜色") if r.id != first.id]
    assert len(again) == 1 and again[0].config.zero_shot and again[0].config.backbone == first.config.backbone
    job = wait_for(ws, again[0].job.id, lambda j: not j.live, seconds=180)
    assert job.status is JobStatus.COMPLETED, job.error


def test_a_dinov2_run_explains_itself_on_evaluate_and_predict(ws, hub_presets):
    """The heat map on a transformer: Evaluate's cell images and Predict's upload, each through the page's
    own model loading (safe mode, KerasHub's layers registered by the loader)."""
    config = TrainConfig(dataset="颜色", backbone=str(hub_presets["dinov2"]), weights="imagenet", image_size=0,
                         head_epochs=2, fine_tune_epochs=0, augment="none", jit_compile="off", batch_size=8)  # fmt: skip
    run = train_here(ws, config)
    assert run.status == "completed", run.error
    test = load_predictions(ws, run.id, "test")
    at = page("evaluate")
    at.selectbox(key="cell_true").set_value(int(test.labels[0]))
    at.selectbox(key="cell_pred").set_value(int(test.predicted[0])).run()  # a cell with an image in it
    at.toggle(key="cell_cam").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    at = page("predict")
    at.toggle(key="predict_cam").set_value(True).run()
    at.file_uploader(key="images").set_value([("red.png", dict(separable(TWO_COLOURS, 1))["红/0.png"], "image/png")])
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.markdown[0].value.startswith("**") and len(at.get("image")) >= 1  # the overlay
