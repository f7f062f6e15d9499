"""Fast labeling of unlabeled images: one image at a time, one button per class with a keyboard
shortcut (1-9), S to skip, Z to undo; progress and the rate in images per minute."""

from __future__ import annotations

import time

import streamlit as st

from core.datasets.catalog import images_by_id
from core.datasets.gallery import UNLABELED_FILTER, GalleryFilter, matching_ids
from core.errors import LabelTuneError
from core.evaluation.jobs import PREDICTIONS, start_predictions
from core.evaluation.suggestions import confident, most_uncertain_first, suggestion_run, suggestions
from core.jobs.store import list_jobs
from core.runs.predictions import UNLABELED
from ui.common import md_text, show_error, t, workspace
from ui.jobs import job_ui
from ui.label_views import relabel_with_undo, undo

SHORTCUT_CLASSES = 9  # classes 1 to 9 get a number key
QUEUE_KEY = "queue"


def _state(dataset: str) -> dict:
    """This session's queue: what was skipped, when labeling started, how many were labeled."""
    state = st.session_state.get(QUEUE_KEY)
    if state is None or state["dataset"] != dataset:
        total = len(matching_ids(workspace(), dataset, GalleryFilter(UNLABELED_FILTER)))
        state = {"dataset": dataset, "skipped": [], "labeled": 0, "started": time.monotonic(), "total": total}
        st.session_state[QUEUE_KEY] = state
    return state


def queue_ui(dataset: str, classes: list[str], descriptions: dict[str, str]) -> None:
    state = _state(dataset)
    unlabeled = GalleryFilter(UNLABELED_FILTER)
    waiting = [i for i in matching_ids(workspace(), dataset, unlabeled) if i not in state["skipped"]]
    found = suggestions_ui(dataset, classes)
    if found:
        waiting = most_uncertain_first(waiting, found)
    minutes = max((time.monotonic() - state["started"]) / 60, 1e-6)
    st.progress(
        min(state["labeled"] / max(state["total"], 1), 1.0),
        text=t("label.progress", done=state["labeled"], total=state["total"], rate=state["labeled"] / minutes),
    )
    if not classes:
        st.info(t("label.no_classes"))
        return
    if not waiting:
        st.success(t("label.queue_done"))
    else:
        image = images_by_id(workspace(), waiting[:1])[waiting[0]]
        left, right = st.columns([3, 2])
        left.image(str(image.path), caption=md_text(image.name))
        if found and image.id in found:
            guess = " · ".join(f"{md_text(label)} {p:.0%}" for label, p in found[image.id].top)
            left.caption(t("label.suggestion", guess=guess))
        with right:
            for n, name in enumerate(classes):
                shortcut = str(n + 1) if n < SHORTCUT_CLASSES else None
                if st.button(md_text(name), key=f"q_{n}", shortcut=shortcut, width="stretch"):
                    _label(dataset, image.id, name, state)
                if descriptions.get(name):
                    st.caption(md_text(descriptions[name]))
            if st.button(t("label.skip"), key="q_skip", shortcut="s"):
                state["skipped"].append(image.id)
                st.rerun()
    if st.button(t("label.undo"), key="q_undo", shortcut="z"):
        if undo(dataset):
            state["labeled"] = max(state["labeled"] - 1, 0)
        st.rerun()


def _label(dataset: str, image_id: int, name: str, state: dict) -> None:
    try:
        relabel_with_undo(dataset, [image_id], name)
    except LabelTuneError as exc:
        show_error(exc)
        return
    state["labeled"] += 1
    st.rerun()


def suggestions_ui(dataset: str, classes: list[str]) -> dict | None:
    """The newest model's suggestions: computed on request (a background job), then offered image by image
    and in bulk ("accept all of a class above P")."""
    run = suggestion_run(workspace(), dataset)
    if run is None:
        st.caption(t("label.suggest_no_model"))
        return None
    found = suggestions(workspace(), dataset)
    if found is None:
        jobs = list_jobs(workspace(), kinds=(PREDICTIONS.name,), run_id=run.id, limit=1)
        if jobs and jobs[0].live:
            job_ui(jobs[0].id, "suggest")
        elif st.button(t("label.suggest"), key="suggest"):
            job_ui(start_predictions(workspace(), run.id, (UNLABELED,)), "suggest")
        return None
    with st.expander(t("label.accept_header", run=run.id, count=len(found))):
        a, b = st.columns(2)
        label = a.selectbox(t("label.move_to"), run.classes, key="accept_class")
        threshold = b.slider(t("label.accept_threshold"), 0.5, 1.0, 0.9, 0.01, key="accept_threshold")
        chosen = confident(found, label, threshold)
        if st.button(t("label.accept", count=len(chosen), label=label), disabled=not chosen, key="accept"):
            relabel_with_undo(dataset, chosen, label)
            st.rerun()
    return found
