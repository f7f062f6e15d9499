"""The Train page driven through its widgets, with real worker processes training real (tiny) models."""

import time
from pathlib import Path

import keras
import pytest
from streamlit.testing.v1 import AppTest

from core.datasets.ingest import import_archive
from core.i18n import tr
from core.jobs import queue
from core.jobs.store import JobStatus, list_jobs
from core.runs import store as runs
from core.runs.config import TrainConfig
from core.runs.folder import RunFolder
from core.store.workspace import Workspace
from core.training.jobs import create_run, resume_here
from core.training.presets import preset_values
from tests.builders import class_folders, make_zip, separable
from tests.jobs import cancelled, wait_for
from ui.common import md_text

ROOT = Path(__file__).resolve().parents[2]
COLOURS = {"红色": (200, 60, 60), "蓝色": (60, 60, 200)}


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELTUNE_HOME", str(tmp_path / "ws"))
    monkeypatch.chdir(ROOT)
    ws = Workspace.open(tmp_path / "ws")
    import_archive(ws, make_zip(tmp_path / "colours.zip", separable(COLOURS, 12)), name="颜色")
    return ws


def train_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    return at


def tiny_form(at: AppTest, head: int, fine: int) -> None:
    """The fastest settings that still train: VGG16 from scratch at 32 px learns colours in a few steps."""
    at.selectbox(key="tr_backbone").set_value("vgg16")
    at.radio(key="tr_weights").set_value("none")
    at.number_input(key="tr_image_size").set_value(32)
    at.number_input(key="tr_head_epochs").set_value(head)
    at.number_input(key="tr_fine_tune_epochs").set_value(fine)
    at.selectbox(key="tr_augment").set_value("none")
    at.number_input(key="tr_batch_size").set_value(8)
    at.number_input(key="tr_early_stopping").set_value(0)
    at.toggle(key="tr_feature_cache").set_value(False)
    at.selectbox(key="tr_planning").set_value("fixed")  # the advice's measured plan would try sizes first
    at.number_input(key="tr_max_minutes").set_value(0.0)
    at.run()
    assert not at.error, [e.value for e in at.error]


def wait_until(ws: Workspace, run_id: str, done, seconds: float = 240) -> runs.Run:
    deadline = time.monotonic() + seconds
    run = runs.get_run(ws, run_id)
    while not done(run) and time.monotonic() < deadline:
        time.sleep(0.5)
        run = runs.get_run(ws, run_id)
    log = run.job.log_path(ws)
    assert done(run), (run.status, run.error, log.read_text()[-2000:] if log.exists() else "")
    return run


def test_without_a_dataset_the_page_says_where_to_start(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELTUNE_HOME", str(tmp_path / "empty"))
    monkeypatch.chdir(ROOT)
    assert train_page().info[0].value == tr("train.no_dataset", "en")


@pytest.mark.slow
def test_start_queue_a_second_run_compare_them_and_delete_one(ws):
    at = train_page()
    assert at.selectbox(key="train_dataset").value == "颜色"
    assert at.info[-1].value == tr("train.no_runs", "en")
    tiny_form(at, head=12, fine=1)  # long enough to be still training when the second run is started
    at.button(key="start").click().run()
    assert not at.exception, at.exception
    first = at.session_state["run"]
    assert at.success[0].value == tr("train.started", "en", run=first)
    run = runs.get_run(ws, first)
    assert run.live and run.job.pid  # a worker process, not this script, trains
    at.run()  # the worker needs seconds just to import TensorFlow: the run is still live here
    assert not at.button(key="start").disabled
    assert tr("train.will_queue", "en", count=1) in [i.value for i in at.info]
    at.number_input(key="tr_head_epochs").set_value(2)
    at.number_input(key="tr_lr").set_value(0.02).run()
    at.button(key="start").click().run()
    second = at.session_state["run"]
    assert second != first and runs.get_run(ws, second).status == "queued"
    position = queue.position(ws, runs.get_run(ws, second).job.id)  # 2 while the first run's worker starts
    assert position in (1, 2) and at.success[0].value == tr("train.queued", "en", run=second, position=position)
    at.run()  # the queue at the top of the page, drawn again
    assert md_text(second) in " ".join(m.value for m in at.markdown)  # escaped for Markdown: shown as typed
    if runs.get_run(ws, second).status == "queued":  # the selected run waits: its place, and cancel
        assert any(i.value.startswith("Waiting in the queue") for i in at.info) and at.button(key="cancel_selected")
    assert tr("train.queue_position", "en", position=queue.position(ws, runs.get_run(ws, second).job.id)) in " ".join(
        c.value for c in at.caption
    )
    done = wait_until(ws, second, lambda r: r.status not in ("queued", "running"), seconds=400)
    before = runs.get_run(ws, first)
    assert before.status == done.status == "completed"  # the second started by itself after the first
    assert before.ended_at <= done.started_at
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    row = table[table["Run"] == first].iloc[0]
    assert row["Status"] == "completed" and row["Weights used"] == "none" and row["Epochs"] == 13
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Epochs run"] == "3" and metrics["Test accuracy"].endswith("%")
    # A finished run can teach (knowledge distillation): it is offered in the form and the form accepts it.
    at.selectbox(key="tr_teacher").set_value(first).run()
    assert not at.error and not at.button(key="start").disabled
    at.selectbox(key="tr_teacher").set_value("").run()
    # Compare: both runs' validation curves, and the one differing setting highlighted.
    assert set(at.multiselect(key="compare_runs").value) == {first, second}
    charts = {c.proto.id: c.proto.spec for c in at.get("plotly_chart")}
    compare = next(spec for spec in charts.values() if "Validation accuracy" in spec)
    assert first in compare and second in compare
    assert tr("train.compare_differing", "en", count=2) in [c.value for c in at.caption]  # head epochs, lr
    # Delete the selected run: confirm, then its row and its folder are gone.
    chosen = at.selectbox(key="run").value
    assert at.button(key="delete_run").disabled
    at.checkbox(key=f"delete_sure_{chosen}").check().run()
    at.button(key="delete_run").click().run()
    assert not at.exception, at.exception
    assert [r.id for r in runs.list_runs(ws)] == [r for r in (second, first) if r != chosen]
    assert not RunFolder.of(ws, chosen).path.exists()


def test_the_form_starts_from_the_advice_and_apply_this_advice_restores_it(ws, monkeypatch):
    """On this CPU the default run is the advice (a light MobileNetV2 at a size that suits the 48x40 images),
    not ResNet50 at 224 px; after edits the button sets it back."""
    monkeypatch.setenv("KERAS_HOME", str(ws.root / "keras"))  # no downloaded weights: the bundled ones
    at = train_page()
    advised = {"tr_backbone": "mobilenet_v2_0.35", "tr_image_size": 96, "tr_head_epochs": 15, "tr_fine_tune_epochs": 10}
    shown = {"tr_backbone": at.selectbox(key="tr_backbone").value}
    shown.update({k: at.number_input(key=k).value for k in advised if k != "tr_backbone"})
    assert shown == advised and at.radio(key="tr_weights").value == "imagenet"
    # a measured plan (the run tries its sizes, here only 96 px, and fits fine-tuning into the figure)
    assert at.selectbox(key="tr_planning").value == "measured" and at.number_input(key="tr_max_minutes").value >= 1
    assert tr("advice.applied", "en") in [c.value for c in at.caption]
    assert "apply_advice" not in [b.key for b in at.button]
    tiny_form(at, head=2, fine=1)
    at.button(key="apply_advice").click().run()
    assert at.selectbox(key="tr_backbone").value == "mobilenet_v2_0.35"
    assert at.number_input(key="tr_image_size").value == 96 and at.number_input(key="tr_head_epochs").value == 15
    assert at.radio(key="tr_weights").value == "imagenet"
    assert at.number_input(key="tr_batch_size").value == 8  # what the advice does not cover stays as edited
    at.button_group(key="tr_preset").set_value("quick").run()
    at.button_group(key="tr_preset").set_value("balanced").run()  # the balanced preset is the advice
    assert (
        at.selectbox(key="tr_backbone").value == "mobilenet_v2_0.35"
        and at.number_input(key="tr_image_size").value == 96
    )
    assert tr("train.preset_custom", "en") not in [c.value for c in at.caption]


def _preset_callback_for_nothing() -> None:
    import streamlit as st

    from ui.train_plan import _apply_preset, preset_ui

    preset_ui()
    st.session_state.setdefault("tr_head_epochs", 15)
    st.number_input("head epochs", 0, 100, key="tr_head_epochs")
    st.button("again", key="again", on_click=_apply_preset)  # the preset's callback, the preset unchanged


def test_a_preset_fills_the_form_only_when_chosen(ws):
    """Streamlit can call a control's callback when its value did not change (a rerun interrupted the run
    that drew it: seen in Chromium for the language switch); the preset's must not undo the user's edits.
    Clicking the chosen preset again once stopped the page (no preset: "preset must be one of")."""
    at = AppTest.from_function(_preset_callback_for_nothing, default_timeout=30).run()
    at.number_input(key="tr_head_epochs").set_value(3).run()
    at.button(key="again").click().run()
    assert not at.exception and at.number_input(key="tr_head_epochs").value == 3
    at.button_group(key="tr_preset").set_value("quick").run()
    assert at.number_input(key="tr_head_epochs").value == preset_values("quick")["head_epochs"] != 3
    at.number_input(key="tr_head_epochs").set_value(3).run()
    at.button_group(key="tr_preset").set_value(None).run()
    assert not at.exception and at.number_input(key="tr_head_epochs").value == 3


@pytest.mark.slow
def test_a_preset_fills_the_form_and_the_estimate_preview_and_lr_finder_run_as_jobs(ws):
    at = train_page()
    at.button_group(key="tr_preset").set_value("quick").run()
    assert at.selectbox(key="tr_backbone").value == "mobilenet_v2_0.35"
    assert at.number_input(key="tr_fine_tune_epochs").value == 0 and at.toggle(key="tr_feature_cache").value
    assert tr("preset.quick_when", "en") in [c.value for c in at.caption]
    from core.training.advice import advise_dataset

    advice = advise_dataset(ws, "颜色")  # 20 of the 24 images train or validate; on this CPU, MobileNetV2
    assert advice.backbone.startswith("mobilenet_v2") and advice.params["images"] == 20
    shown = next(i.value for i in at.info if i.value.startswith(tr(advice.key, "en", **advice.params)))
    assert shown.endswith(tr("advice.small_images", "en", median=40))  # 48x40 images: no need for 224 px
    tiny_form(at, head=2, fine=1)
    assert tr("train.preset_custom", "en") in [c.value for c in at.caption]
    assert tr("train.estimate_none", "en") in [c.value for c in at.caption]
    for key, kind in (("estimate", "estimate"), ("preview", "preview"), ("lr_find", "lr_find")):
        at.button(key=key).click().run()  # queues the job and returns: its progress shows, with Cancel
        assert not at.exception and not at.error, [e.value for e in at.error]
        job = list_jobs(ws, kinds=(kind,), limit=1)[0]
        assert at.button(key=f"{key}_cancel_{job.id}") and len(at.get("progress")) >= 1
        assert wait_for(ws, job.id, lambda j: not j.live).status is JobStatus.COMPLETED
        at.run()
    assert any("Estimated time on this machine" in m.value for m in at.markdown)
    assert len(at.get("image")) == 1
    assert "lr_curve" in " ".join(c.proto.id for c in at.get("plotly_chart"))
    at.button(key="lr_use").click().run()
    from core.training.lr_sweeps import cached_sweep

    config = TrainConfig(**{**TrainConfig(dataset="颜色").to_dict(), "backbone": "vgg16", "weights": "none",
                            "image_size": 32, "head_epochs": 2, "fine_tune_epochs": 1, "augment": "none",
                            "batch_size": 8, "early_stopping": 0, "feature_cache": False})  # fmt: skip
    assert at.number_input(key="tr_lr").value == pytest.approx(cached_sweep(ws, config).suggestion, rel=0.06)
    at = train_page()  # a new session: the estimate is cached, shown at once
    tiny_form(at, head=2, fine=1)
    assert any("Estimated time on this machine" in m.value for m in at.markdown)


@pytest.mark.slow
def test_stop_button_stops_a_running_worker(ws):
    at = train_page()
    tiny_form(at, head=400, fine=0)
    at.button(key="start").click().run()
    run_id = at.session_state["run"]
    wait_until(ws, run_id, lambda r: r.status == "running" and runs.latest_metrics(ws, r.id))
    at.run()
    assert "Epoch" in at.get("progress")[0].proto.text  # live progress from the worker's metrics
    at.button(key="stop").click().run()
    assert tr("train.stop_requested", "en") in [i.value for i in at.info]
    run = wait_until(ws, run_id, lambda r: r.status not in ("queued", "running"), seconds=120)
    assert run.status == "stopped" and 0 < run.epochs_run < 400
    at.run()
    assert at.button(key="resume")  # a stopped run offers to resume


@pytest.mark.slow
def test_a_run_from_the_command_line_shows_with_its_weights_and_resumes_in_a_worker(ws):
    config = TrainConfig(
        dataset="颜色", backbone="vgg16", weights="none", image_size=32, batch_size=8, head_epochs=3,
        fine_tune_epochs=0, augment="none", early_stopping=0, jit_compile="off", lr=0.01,
    )  # fmt: skip
    run_id = create_run(ws, config)

    class StopAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                runs.request_stop(ws, run_id)
                time.sleep(0.5)  # a user's click, seen by the run within a quarter of a second

    assert resume_here(ws, run_id, [StopAfterFirstEpoch()]).status == "stopped"
    at = train_page()
    assert at.session_state["run"] == run_id
    table = at.dataframe[0].value
    assert table.iloc[0]["Status"] == "stopped" and table.iloc[0]["Weights used"] == "none"
    at.button(key="resume").click().run()
    assert not at.exception, at.exception
    run = wait_until(ws, run_id, lambda r: r.status not in ("queued", "running"))
    assert run.status == "completed" and run.epochs_run == 3


@pytest.mark.slow  # trains a run
def test_a_measured_run_says_what_it_chose_and_why(ws):
    config = TrainConfig(
        dataset="颜色", backbone="mobilenet_v2_0.35", weights="none", image_size=96, batch_size=8, head_epochs=2,
        fine_tune_epochs=3, augment="none", jit_compile="off", planning="measured", max_minutes=0.01,
    )  # fmt: skip
    run = resume_here(ws, create_run(ws, config))
    assert run.status == "completed" and run.config.fine_tune_epochs == 0  # too few images a class
    at = train_page()
    assert at.session_state["run"] == run.id
    captions = " ".join(c.value for c in at.caption)
    assert "📐 " + md_text(tr("plan.size_one", "en", size=96)) in captions  # 48 x 40 px images: only 96 px
    assert md_text(tr("plan.too_few_to_fine_tune", "en", **run.device["plan"]["then"]["params"])) in captions


def test_invalid_settings_and_untrainable_datasets_are_explained(ws, tmp_path, monkeypatch):
    monkeypatch.delenv("LABELTUNE_SERVER_ROOTS", raising=False)
    at = train_page()
    at.radio(key="tr_weights").set_value("file").run()
    at.text_input(key="tr_weights_path").input("/no/such/weights.h5").run()
    assert md_text("/no/such/weights.h5") in at.error[0].value and at.button(key="start").disabled
    # a path typed in the browser: only inside the server's roots, and no answer about what lies outside
    assert "cannot be named from the browser" in at.error[0].value  # err.server_paths_off
    (tmp_path / "allowed").mkdir()
    monkeypatch.setenv("LABELTUNE_SERVER_ROOTS", str(tmp_path / "allowed"))
    (tmp_path / "secret.h5").write_bytes(b"x")
    at.text_input(key="tr_weights_path").input(str(tmp_path / "secret.h5")).run()
    assert "outside the folders this server allows" in at.error[0].value and at.button(key="start").disabled
    at.text_input(key="tr_weights_path").input(str(tmp_path / "allowed" / "no.h5")).run()
    assert "Nothing is at" in at.error[0].value
    import_archive(ws, make_zip(tmp_path / "one.zip", class_folders({"猫": 4})), name="one")
    at = train_page()
    at.selectbox(key="train_dataset").set_value("one").run()
    tiny_form(at, head=1, fine=0)
    at.button(key="start").click().run()
    assert "one" in at.error[0].value and runs.list_runs(ws, "one") == []


def test_every_status_phase_weight_choice_and_setting_choice_has_a_label():
    from core.i18n import catalog
    from ui.train_form import WEIGHT_CHOICES

    keys = [f"status.{s}" for s in JobStatus] + ["train.phase_head", "train.phase_fine_tune"]
    keys += [f"train.weights_{w}" for w in WEIGHT_CHOICES]
    assert [k for k in keys if k not in catalog("en") or k not in catalog("zh")] == []
    unlabelled = [
        (f.name, value)
        for f in TrainConfig.user_fields()
        if f.metadata["choices"] and f.name != "backbone"  # backbones show their own friendly names
        for value in f.metadata["choices"]
        if f"choice.{f.name}_{value}" not in catalog("zh") and f"choice.{value}" not in catalog("zh")
    ]
    assert unlabelled == []


def test_the_form_has_one_widget_per_setting_with_the_fields_help_and_default(ws):
    """The form is generated from TrainConfig: every field is there, with its help text and its default (the
    advice's value for the fields the advice sets)."""
    from core.runs.config import TrainConfig
    from core.training.advice import advise_dataset

    at = train_page()
    widgets = {w.key: w for w in at.main if getattr(w, "key", None)}
    defaults = TrainConfig(dataset="颜色", **advise_dataset(ws, "颜色").values())
    for f in TrainConfig.user_fields():
        widget = widgets[f"tr_{f.name}"]
        assert widget.help == tr(f"help.{f.name}", "en"), f.name
        if f.name != "weights":
            assert widget.value == getattr(defaults, f.name), f.name
    at.number_input(key="tr_dropout").set_value(0.5)
    at.selectbox(key="tr_schedule").set_value("constant").run()
    assert not at.error and not at.button(key="start").disabled
    at.number_input(key="tr_head_epochs").set_value(0)
    at.number_input(key="tr_fine_tune_epochs").set_value(0).run()  # TrainConfig's own rule, shown by the form
    assert at.error[0].value == tr("err.config_no_epochs", "en") and at.button(key="start").disabled


def test_a_run_says_when_its_dataset_changed_since(ws):
    from core.datasets import editing

    # never trains: this test is about the page, not training
    config = TrainConfig(dataset="颜色", backbone="vgg16", weights="none", image_size=32)
    run_id = cancelled(ws, create_run(ws, config, attached=True))
    at = train_page()
    assert at.selectbox(key="run").value == run_id
    assert not any("has changed since" in c.value for c in at.caption)
    editing.relabel(ws, "颜色", editing.class_images(ws, "颜色", "红色")[:1], "蓝色")
    at.run()
    assert at.warning[0].value == tr("train.dataset_changed", "en", trained=1, now=2)


@pytest.mark.slow
def test_the_tune_form_starts_a_search_shows_its_trials_live_and_then_the_run_it_became(ws, offline):
    from core.training.tune import TUNE, list_trials

    at = train_page()
    at.number_input(key="tune_budget").set_value(1)
    at.button(key="tune_start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    job = list_jobs(ws, kinds=(TUNE.name,), limit=1)[0]
    assert job.params["budget_s"] == 60 and at.button(key=f"tune_cancel_{job.id}")  # live, with Cancel
    assert at.button(key="tune_start").disabled  # one search per dataset at a time
    wait_for(ws, job.id, lambda j: len(list_trials(ws, j.id)) >= 2 or not j.live)
    at.run()
    if list_jobs(ws, kinds=(TUNE.name,), limit=1)[0].live:  # the trials show while it searches
        assert any(tr("tune.col_trial", "en") in df.value.columns for df in at.dataframe)
    done = wait_for(ws, job.id, lambda j: not j.live, seconds=120)
    assert done.status is JobStatus.COMPLETED, done.error
    at.run()
    chosen = tr("tune.chosen", "en", run=done.result["run"], epochs=done.result["fine_tune_epochs"])
    assert chosen in [s.value for s in at.success]
    assert f"tune_chart_{job.id}" in " ".join(c.proto.id for c in at.get("plotly_chart"))
    assert done.result["run"] in [r.id for r in runs.list_runs(ws)]  # an ordinary run, in the history
    wait_until(ws, done.result["run"], lambda r: not r.job.live)


def test_a_run_title_shows_as_typed_not_as_markdown(ws):
    config = TrainConfig(dataset="颜色", backbone="vgg16", weights="none", image_size=32)
    run_id = cancelled(ws, create_run(ws, config, attached=True))
    runs.annotate_run(ws, run_id, title="**粗体** :red[x]")
    at = train_page()
    from ui.common import md_text

    assert any(m.value.startswith(f"**{md_text(f'**粗体** :red[x] · {run_id}')}**") for m in at.markdown)
    assert md_text("**粗体** :red[x]") == r"\*\*粗体\*\* \:red\[x\]"
