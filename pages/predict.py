"""Predict page: try the model on new photos (upload, camera, an example: in this process, with the model
loaded once), or a whole zip or split at once (a batch prediction job)."""

import streamlit as st

from core.datasets.catalog import load_dataset, split_images
from core.errors import LabelTuneError
from core.evaluation.gradcam import DEFAULT_ALPHA
from core.prediction.predict import DEFAULT_THRESHOLD, DEFAULT_TOP_K
from ui.app import through_navigation
from ui.common import md_text, show_error, t, workspace
from ui.models import flip_toggle_ui, predictor, run_picker_ui
from ui.predict_views import batch_job_ui, result_ui

through_navigation()  # run on its own (a deep link to a fresh server), the page opens inside the app

IMAGE_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]
EXAMPLES = 12  # test-split images offered as examples

ws = workspace()
st.header(t("predict.header"))
run = run_picker_ui("predict_run")
if run is None:
    st.stop()
a, b, c, d = st.columns(4)
top_k = a.number_input(t("predict.top_k"), 1, len(run.classes), min(DEFAULT_TOP_K, len(run.classes)), key="top_k")
threshold = b.slider(t("predict.threshold"), 0.0, 1.0, DEFAULT_THRESHOLD, 0.05, key="threshold")
cam = c.toggle(t("eval.gradcam"), key="predict_cam", help=t("eval.gradcam_help"))
alpha = d.slider(t("eval.opacity"), 0.0, 1.0, DEFAULT_ALPHA, 0.05, key="predict_alpha", disabled=not cam)
flip = flip_toggle_ui(run.id, "predict_flip")
try:
    model = predictor(run.id, flip)
    descriptions = load_dataset(ws, run.dataset_name).descriptions
except LabelTuneError as exc:
    show_error(exc)
    st.stop()


def show(items: list[tuple[str, bytes]]) -> None:
    for (_, data), result in zip(items, model.predict(items, int(top_k), threshold), strict=True):
        st.divider()
        result_ui(run.id, result, data, descriptions, cam, alpha)


upload, camera, example, batch = st.tabs(
    [t("predict.tab_upload"), t("predict.tab_camera"), t("predict.tab_example"), t("predict.tab_batch")]
)
with upload:
    files = st.file_uploader(t("predict.upload"), type=IMAGE_TYPES, accept_multiple_files=True, key="images")
    if files:
        show([(f.name, f.getvalue()) for f in files])
with camera:
    shot = st.camera_input(t("predict.camera"), key="camera")
    if shot is not None:
        show([("camera.jpg", shot.getvalue())])
with example:
    examples = split_images(ws, run.dataset_name, "test", EXAMPLES)
    if not examples:
        st.info(t("predict.no_examples"))
    else:
        st.caption(t("predict.examples_help"))
        by_id = {e.id: e for e in examples}
        chosen = st.selectbox(t("predict.example"), list(by_id), format_func=lambda i: by_id[i].name, key="example")
        record = by_id[chosen]
        st.caption(t("predict.example_label", label=md_text(record.label)))
        show([(record.name, record.path.read_bytes())])
with batch:
    batch_job_ui(run.id, int(top_k), threshold, flip)
