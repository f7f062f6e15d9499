"""The Evaluate and Predict pages, driven through their widgets against a real tiny trained run."""

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.i18n import tr
from core.jobs.store import JobStatus, list_jobs
from core.runs.predictions import load_predictions, stored_splits
from core.store.workspace import Workspace
from tests.builders import COLOURS, make_zip, separable, trained_colour_run
from tests.conftest import copy_of_trained
from tests.jobs import wait_for
from ui.common import md_text

pytestmark = pytest.mark.slow  # trains a tiny model and loads it in the app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(trained_once, tmp_path_factory):
    """The module's copy of the session's trained workspace (its tests follow one another on it)."""
    return copy_of_trained(trained_once, tmp_path_factory.mktemp("model_pages") / "ws")


@pytest.fixture
def home(trained, monkeypatch):
    ws, run = trained
    monkeypatch.setenv("LABELTUNE_HOME", str(ws.root))
    monkeypatch.chdir(ROOT)
    return ws, run


def page(path: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.switch_page(path).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def job_ends(at: AppTest, ws: Workspace, kind: str, key: str) -> None:
    """After a click that queued a job: the click's own run returned showing the job's progress and its
    Cancel (unless a warm worker already finished it within that run); the job completes in a worker
    process, never in the page's, and the page, drawn again, shows its result."""
    job = list_jobs(ws, kinds=(kind,), limit=1)[0]
    if any(b.key == f"{key}_cancel_{job.id}" for b in at.button):
        assert at.get("progress")
    done = wait_for(ws, job.id, lambda j: not j.live, seconds=300)
    assert done.status is JobStatus.COMPLETED and done.pid != os.getpid()
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_evaluate_shows_metrics_confusion_top_losses_and_gradcam(home):
    ws, run = home
    at = page("pages/evaluate.py")
    assert at.selectbox(key="eval_run").value == run.id and at.radio(key="eval_split").value == "test"
    labels = [m.label for m in at.metric]
    assert tr("metric.accuracy", "en") in labels and tr("metric.macro_f1", "en") in labels
    assert tr("eval.per_class", "en") in [s.value for s in at.subheader]
    table = at.dataframe[0].value
    assert list(table[tr("eval.col_class", "en")]) == run.classes
    at.toggle(key="normalise").set_value(True).run()
    at.selectbox(key="cell_true").set_value(1)
    at.selectbox(key="cell_pred").set_value(1).run()
    caption = next(c.value for c in at.caption if "predicted as" in c.value)
    name = run.classes[1]
    assert caption.split(" ")[0].isdigit() and f"{name} predicted as {name}" in caption
    at.toggle(key="cell_cam").set_value(True).run()  # Grad-CAM on that cell's images: loads the model
    assert not at.exception, [e.value for e in at.exception]
    assert tr("eval.calibration", "en") in [s.value for s in at.subheader]
    assert any("Expected calibration error" in c.value for c in at.caption)


def test_evaluate_opens_on_the_first_split_with_images_again_after_another_page(home):
    """Seen in Chromium: back on Evaluate after another page, the split was the train split (Streamlit had
    forgotten the radio's state, and the page still remembered the run)."""
    at = page("pages/evaluate.py")
    assert at.radio(key="eval_split").value == "test"
    at.switch_page("pages/jobs.py").run()
    at.switch_page("pages/evaluate.py").run()
    assert not at.exception and at.radio(key="eval_split").value == "test"


def test_evaluate_computes_missing_predictions_in_the_background(home):
    ws, run = home
    at = page("pages/evaluate.py")
    at.radio(key="eval_split").set_value("train").run()
    assert at.info[0].value.startswith(tr("eval.no_predictions", "en", split="train")[:20])
    at.button(key="compute_predictions").click().run()
    job_ends(at, ws, "predictions", "predictions")
    assert "train" in stored_splits(ws, run.id)
    assert not at.exception and tr("metric.accuracy", "en") in [m.label for m in at.metric]


def test_flip_averaged_predictions_on_evaluate_predict_and_export(home):
    ws, run = home
    at = page("pages/evaluate.py")
    at.toggle(key="eval_flip").set_value(True).run()
    assert at.info[0].value == tr("eval.no_flip_predictions", "en", split="test")
    assert tr("exp.flip_unknown", "en") not in [c.value for c in at.caption]  # the page stopped above export
    at.button(key="compute_predictions").click().run()
    job_ends(at, ws, "predictions", "predictions")
    assert stored_splits(ws, run.id, flip=True) == ["val", "test"]
    flipped = load_predictions(ws, run.id, "test", flip=True)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics[tr("metric.accuracy", "en")] == f"{flipped.accuracy:.1%}"
    plain, val = load_predictions(ws, run.id, "val"), load_predictions(ws, run.id, "val", flip=True)
    measured = tr("eval.flip_measured", "en", plain=plain.accuracy, flipped=val.accuracy)
    assert measured in [c.value for c in at.caption]
    helps = (val.accuracy, -val.log_loss) > (plain.accuracy, -plain.log_loss)
    offered = any(c.key == "export_flip" for c in at.checkbox)
    assert offered == helps  # the export offers it only where it helped
    if not helps:
        assert tr("exp.flip_not_helping", "en") in [c.value for c in at.caption]
    at = page("pages/predict.py")
    at.toggle(key="predict_flip").set_value(True).run()
    assert not at.exception and measured in [c.value for c in at.caption]


def test_predict_an_upload_a_corrupt_file_and_a_batch_zip(home, tmp_path):
    ws, run = home
    at = page("pages/predict.py")
    images = dict(separable(COLOURS, 16))
    at.file_uploader(key="images").set_value(
        [("red.png", images["红/15.png"], "image/png"), ("broken.jpg", b"not an image", "image/jpeg")]
    ).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.markdown[0].value.startswith("**红**")
    assert md_text("broken.jpg") in at.error[0].value  # the file name, shown as typed
    assert len(at.get("plotly_chart")) >= 1
    at.slider(key="threshold").set_value(1.0).run()
    assert tr("predict.not_sure", "en", p=0.5)[:10] in at.warning[0].value
    batch = make_zip(tmp_path / "batch.zip", [("a.png", images["蓝/15.png"]), ("b.txt", b"x")]).read_bytes()
    at.radio(key="batch_source").set_value("zip").run()
    at.file_uploader(key="batch_zip").set_value(("batch.zip", batch, "application/zip")).run()
    at.button(key="run_batch").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.file_uploader(key="batch_zip_1").value is None  # the job has its copy: the upload is let go
    job_ends(at, ws, "predict_batch", "batch")
    table = at.dataframe[0].value
    assert list(table[tr("predict.col_file", "en")]) == ["a.png", "b.txt"]
    assert table[tr("predict.col_top1", "en")][0] == "蓝"
    assert at.get("download_button")


def test_predict_an_example_from_the_test_split_and_a_whole_split(home):
    ws, run = home
    at = page("pages/predict.py")
    assert at.selectbox(key="example").value is not None
    assert any(c.value.startswith("Its label in the dataset") for c in at.caption)
    at.radio(key="batch_source").set_value("split").run()
    at.selectbox(key="batch_split").set_value("val").run()
    at.button(key="run_batch").click().run()
    assert not at.exception
    job_ends(at, ws, "predict_batch", "batch")
    from core.training.pipeline import load_training_data

    assert len(at.dataframe[0].value) == len(load_training_data(ws, "颜色").val)


def test_evaluate_shows_its_figures_without_loading_tensorflow(home):
    """The metrics come from stored predictions: a fresh interpreter renders the page and never imports TF."""
    import os
    import subprocess
    import sys
    import textwrap

    ws, run = home
    script = textwrap.dedent(
        """
        import sys
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file("streamlit_app.py", default_timeout=60).run()
        at.switch_page("pages/evaluate.py").run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.metric, "no figures shown"
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
        print("HEAVY", heavy[:5])
        sys.exit(1 if heavy else 0)
        """
    )
    env = {**os.environ, "LABELTUNE_HOME": str(ws.root)}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def test_evaluate_slices_metrics_by_an_image_attribute(home):
    ws, run = home
    with ws.connect() as conn:
        conn.execute("UPDATE images SET attributes_json = json_object('相机', CASE WHEN id % 2 THEN 'a' ELSE 'b' END)")
    at = page("pages/evaluate.py")
    assert at.selectbox(key="slice").value == "相机"
    table = next(d.value for d in at.dataframe if "value" in d.value.columns)
    assert set(table["value"]) == {"a", "b"} and table["images"].sum() == len(load_predictions_for(ws, run.id))


def load_predictions_for(ws, run_id):
    from core.runs.predictions import load_predictions

    return load_predictions(ws, run_id, "test")


def test_a_mistake_can_be_relabelled_from_the_evaluate_page(tmp_path, monkeypatch):
    from core.datasets.catalog import images_by_id

    ws = Workspace.open(tmp_path / "ws")
    run = trained_colour_run(ws, tmp_path, COLOURS, 10, "weak", head_epochs=1, lr=1e-6)  # a model that errs
    monkeypatch.setenv("LABELTUNE_HOME", str(ws.root))
    monkeypatch.chdir(ROOT)
    at = page("pages/evaluate.py")
    image_id = at.selectbox(key="fix_image").value
    assert image_id is not None, "the weak model made no mistake"
    before = images_by_id(ws, [image_id])[image_id].label
    other = next(c for c in run.classes if c != before)
    at.selectbox(key="fix_to").set_value(other).run()
    at.button(key="fix").click().run()
    assert not at.exception and images_by_id(ws, [image_id])[image_id].label == other


def test_evaluate_exports_the_chosen_formats_with_the_checks_and_a_download(home):
    ws, run = home
    at = page("pages/evaluate.py")
    assert tr("exp.none_yet", "en") in [c.value for c in at.caption]
    at.multiselect(key="export_formats").set_value(["keras", "tflite_float16"]).run()
    at.button(key="export_build").click().run()
    assert not at.exception and not at.error, ([e.value for e in at.exception], [e.value for e in at.error])
    job_ends(at, ws, "export", "export")
    table = next(d.value for d in at.dataframe if tr("exp.col_agreement", "en") in d.value.columns)
    assert list(table[tr("exp.col_format", "en")]) == [
        tr("exp.variant_keras", "en"),
        tr("exp.variant_tflite_float16", "en"),
    ]
    assert all(v == "✅" for v in table[tr("exp.col_offered", "en")])
    assert (
        any(c.value.startswith("predict.py ran with saved_model") for c in at.caption) is False
    )  # no SavedModel chosen
    assert at.get("download_button") and at.get("download_button")[0].proto.label.startswith("Download the zip")


def test_compare_with_the_second_of_several_other_runs(home):
    """Regression: the compare picker was drawn once per candidate run, a duplicate key past the first."""
    from core.runs.config import TrainConfig
    from core.training.jobs import train_here

    ws, run = home
    for seed in (1, 2):
        config = TrainConfig(dataset="颜色", backbone="vgg16", weights="none", image_size=32, batch_size=8,
                             head_epochs=2, fine_tune_epochs=0, lr=0.01, augment="none", seed=seed)  # fmt: skip
        assert train_here(ws, config).status == "completed"
    at = page("pages/evaluate.py")
    at.selectbox(key="eval_run").set_value(run.id).run()
    options = at.selectbox(key="cmp").options
    assert len(options) >= 2
    at.selectbox(key="cmp").set_value(options[-1]).run()
    assert not at.exception, [e.value for e in at.exception]
