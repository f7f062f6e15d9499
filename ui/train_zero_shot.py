"""The Train page's zero-shot model: with an image-text backbone, a classifier from the class names and
descriptions (标签说明) alone, before or beside any training (``core.training.zero_shot``). The prompts are
shown as they will be sent; the template is editable, the descriptions are edited on the Label page."""

from __future__ import annotations

import streamlit as st

from core.errors import LabelTuneError
from core.runs.backbones import BACKBONES, DEFAULT_IMAGE_TEXT, IMAGE_TEXT
from core.training.jobs import start_run
from core.training.zero_shot import prompts_for, zero_shot_config
from ui.common import show_error, t, workspace


def zero_shot_ui(dataset: str, descriptions: dict[str, str]) -> None:
    ws = workspace()
    st.caption(t("zero.what"))
    left, right = st.columns(2)
    model = left.selectbox(
        t("zero.model"), IMAGE_TEXT, index=IMAGE_TEXT.index(DEFAULT_IMAGE_TEXT), key="zero_model",
        format_func=lambda n: f"{BACKBONES[n].friendly} · {n}", help=t("zero.model_help"),
    )  # fmt: skip
    template = right.text_input(t("setting.prompt_template"), key="zero_template", help=t("help.prompt_template"))
    prompts = prompts_for(descriptions, template.strip())
    st.dataframe(
        [{t("zero.col_class"): name, t("zero.col_prompt"): text} for name, text in prompts.items()],
        hide_index=True, width="stretch",
    )  # fmt: skip
    if st.button(t("zero.start"), key="zero_start"):
        try:
            run_id = start_run(ws, zero_shot_config(dataset, model, template.strip()))
        except LabelTuneError as exc:
            show_error(exc)
        else:
            st.session_state["run"] = run_id
            st.success(t("zero.started", run=run_id))
