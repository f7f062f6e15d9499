"""Fast labeling of unlabeled images: one image at a time, one button per class with a keyboard
shortcut (1-9), S to skip, Z to undo; progress and the rate in images per minute."""

from __future__ import annotations

import time

import streamlit as st

from core.datasets.catalog import images_by_id
from core.datasets.gallery import UNLABELED_FILTER, GalleryFilter, matching_ids
from core.errors import LabelTuneError
from ui.common import show_error, t, workspace
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
        left.image(str(image.path), caption=image.name)
        with right:
            for n, name in enumerate(classes):
                shortcut = str(n + 1) if n < SHORTCUT_CLASSES else None
                if st.button(f"{shortcut or ''} {name}".strip(), key=f"q_{n}", shortcut=shortcut, width="stretch"):
                    _label(dataset, image.id, name, state)
                if descriptions.get(name):
                    st.caption(descriptions[name])
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
