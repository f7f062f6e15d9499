"""Fixing a wrong label from the Evaluate page's mistakes, through the same core edit as the Label page."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.datasets import editing
from core.errors import LabelTuneError
from ui.common import md_text, show_error, t, workspace


def relabel_ui(dataset: str, losses: list, classes: list[str]) -> None:
    """Fix a wrong label found among the mistakes, here, through the same core edit as the Label page."""
    by_id = {x.image_id: x for x in losses}
    left, mid, right = st.columns([2, 1, 1])
    chosen = left.selectbox(
        t("eval.relabel_image"), list(by_id), format_func=lambda i: loss_caption(by_id[i]), key="fix_image"
    )
    target = mid.selectbox(t("label.move_to"), classes, index=classes.index(by_id[chosen].predicted), key="fix_to")
    if right.button(t("label.move"), key="fix"):
        try:
            editing.relabel(workspace(), dataset, [chosen], target)
        except LabelTuneError as exc:  # the dataset was deleted or renamed since
            show_error(exc)
        else:
            st.toast(t("eval.relabelled", label=md_text(target)))


def loss_caption(x: Any) -> str:
    return t("eval.loss_caption", true=x.true, pt=x.true_probability, predicted=x.predicted, p=x.probability)
