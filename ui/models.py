"""Choosing a run with a saved model, and loading that model once per run (Evaluate and Predict)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.evaluation.gradcam import gradcam, overlay
from core.prediction.predict import Predictor
from core.runs import store as runs
from core.runs.predictions import load_predictions, stored_splits
from core.store.workspace import Workspace
from ui.common import t, workspace


def run_label(run: runs.Run) -> str:
    return t(
        "eval.run_option",
        run=run.id,
        dataset=run.dataset_name,
        backbone=run.config.backbone,
        date=run.created_at[:16].replace("T", " "),
    )


def run_picker_ui(key: str, label_key: str = "eval.run", choices: list[runs.Run] | None = None) -> runs.Run | None:
    """A selectbox of the runs with a saved model, newest first; None (with what to do) when there is none."""
    choices = runs.model_runs(workspace()) if choices is None else choices
    if not choices:
        st.info(t("eval.no_runs"))
        st.page_link("pages/train.py", label=t("nav.train"), icon="🏋️")
        return None
    by_id = {r.id: r for r in choices}
    chosen = st.selectbox(t(label_key), list(by_id), format_func=lambda i: run_label(by_id[i]), key=key)
    return by_id[chosen]


@st.cache_resource(show_spinner=False, max_entries=4)
def _predictor(root: str, database: str | None, run_id: str, stamp: float, flip: bool) -> Predictor:
    """Loaded once per run, model file version and flip-averaging, then shared by every rerun and session."""
    return Predictor.for_run(Workspace.open(root, database), run_id, flip=flip)


def predictor(run_id: str, flip: bool = False) -> Predictor:
    """The run's model (safe mode, from its own folder), with a spinner the first time; ``flip``: with its
    predictions flip-averaged (test-time augmentation)."""
    ws = workspace()
    path = runs.model_file(ws, run_id)
    with st.spinner(t("predict.loading_model")):
        return _predictor(str(ws.root), ws.database, run_id, path.stat().st_mtime, flip)


def gradcam_image(run_id: str, pixels: Any, class_index: int, alpha: float) -> Any:
    """The Grad-CAM overlay of model-input ``pixels`` for ``class_index``."""

    cam, _ = gradcam(predictor(run_id).model, pixels, class_index)
    return overlay(pixels, cam, alpha)


def flip_toggle_ui(run_id: str, key: str) -> bool:
    """The flip-averaging switch (test-time augmentation), with what it did to this run's validation images
    when both kinds of predictions are stored."""
    ws = workspace()
    on = st.toggle(t("eval.flip"), key=key, help=t("help.flip"))
    if "val" in stored_splits(ws, run_id) and "val" in stored_splits(ws, run_id, flip=True):
        plain, flipped = load_predictions(ws, run_id, "val"), load_predictions(ws, run_id, "val", flip=True)
        st.caption(t("eval.flip_measured", plain=plain.accuracy, flipped=flipped.accuracy))
    return on
