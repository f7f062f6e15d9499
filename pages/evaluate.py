"""Evaluate page: is the model good, where does it fail, why does it decide so. Reads the run's stored
predictions (no TensorFlow for the figures); Grad-CAM loads the run's model on request."""

import pandas as pd
import streamlit as st

from core.datasets.catalog import attribute_of, load_dataset
from core.datasets.gallery import attribute_values
from core.errors import LabelTuneError
from core.evaluation import metrics
from core.evaluation.gradcam import DEFAULT_ALPHA
from core.runs import store as runs
from core.runs.predictions import first_split_with_images, load_predictions, stored_splits
from core.store.workspace import SPLITS
from ui.app import through_navigation
from ui.common import md_text, show_error, t, workspace
from ui.evaluate_fix import loss_caption, relabel_ui
from ui.evaluate_views import (
    binary_ui,
    calibration_ui,
    class_table_ui,
    compare_ui,
    confusion_ui,
    gallery_ui,
    headline_ui,
    missing_predictions_ui,
)
from ui.export_views import export_ui
from ui.models import flip_toggle_ui, run_picker_ui

through_navigation()  # run on its own (a deep link to a fresh server), the page opens inside the app

ws = workspace()
st.header(t("eval.header"))
run = run_picker_ui("eval_run")
if run is None:
    st.stop()
# A run opens on its first split with images, and so does a return to the page (Streamlit forgets a widget's
# state when a page without it runs, and the radio would fall back to its first option, the train split).
if st.session_state.get("eval_split_run") != run.id or "eval_split" not in st.session_state:
    st.session_state["eval_split"] = first_split_with_images(ws, run.id)
    st.session_state["eval_split_run"] = run.id
split = st.radio(
    t("eval.split"), SPLITS, format_func=lambda s: t(f"split.{s}"), horizontal=True, key="eval_split"
)  # fmt: skip
flip = flip_toggle_ui(run.id, "eval_flip")
if split not in stored_splits(ws, run.id, flip):
    missing_predictions_ui(run.id, split, flip)
    st.stop()
try:
    p = load_predictions(ws, run.id, split, flip)
    descriptions = load_dataset(ws, run.dataset_name).descriptions
except LabelTuneError as exc:
    show_error(exc)
    st.stop()
if not len(p):
    st.info(t("eval.empty_split", split=t(f"split.{split}")))
    st.stop()

headline_ui(metrics.split_figures(p), run)
st.subheader(t("eval.per_class"))
class_table_ui(p, descriptions)

attributes = attribute_values(ws, run.dataset_name)
if attributes:
    name = st.selectbox(t("eval.slice"), list(attributes), key="slice")
    rows = metrics.by_attribute(p, attribute_of(ws, p.ids.tolist(), name))
    st.dataframe(pd.DataFrame(rows).round(3), hide_index=True, key="slices")

st.subheader(t("eval.confusion"))
normalise = st.toggle(t("eval.normalise"), key="normalise")
true, predicted = confusion_ui(p, normalise)
alpha = st.slider(t("eval.opacity"), 0.0, 1.0, DEFAULT_ALPHA, 0.05, key="eval_alpha")
cell = [int(i) for i in metrics.cell_images(p, true, predicted)[:24]]
st.caption(
    t("eval.cell_images", count=len(cell), true=md_text(p.classes[true]), predicted=md_text(p.classes[predicted]))
)
gallery_ui(run.id, cell, None, [predicted] * len(cell), "cell", alpha)

st.subheader(t("eval.top_losses"))
st.caption(t("eval.top_losses_help"))
losses = metrics.top_losses(p)
captions = [loss_caption(x) for x in losses]
gallery_ui(
    run.id, [x.image_id for x in losses], captions, [p.classes.index(x.predicted) for x in losses], "loss", alpha
)
if losses:
    relabel_ui(run.dataset_name, losses, run.classes)
    st.page_link("pages/label.py", label=t("eval.fix_labels"), icon="🏷️")

st.subheader(t("eval.calibration"))
calibration_ui(p)
binary_ui(p)

st.subheader(t("eval.compare"))
others = [r for r in runs.model_runs(ws, run.dataset_name) if r.id != run.id and split in stored_splits(ws, r.id)]
if not others:
    st.caption(t("eval.compare_none"))
else:
    chosen = st.selectbox(t("eval.compare_with"), [r.id for r in others], key="cmp")
    other = next(r for r in others if r.id == chosen)
    compare_ui(p, load_predictions(ws, other.id, split), run.id, other.id)

st.subheader(t("exp.header"))
export_ui(run)
