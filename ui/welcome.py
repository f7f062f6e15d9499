"""The first screen of an empty workspace: what LabelTune does, the steps, and the sample dataset."""

from __future__ import annotations

import streamlit as st

from core.datasets.sample import SAMPLE_NAME, import_sample
from core.errors import LabelTuneError
from ui.common import show_error, t, workspace

STEPS = ("dataset", "label", "train", "evaluate", "predict")


def welcome_ui() -> None:
    st.markdown(t("welcome.intro"))
    st.markdown(" → ".join(f"**{t(f'nav.{step}')}**" for step in STEPS))
    st.caption(t("welcome.steps"))


def sample_button_ui() -> None:
    """Import the bundled sample (4 clothing classes, 100 photos) through the normal import."""
    if st.button(t("welcome.sample"), type="primary", key="sample", help=t("welcome.sample_help")):
        try:
            result = import_sample(workspace())
        except LabelTuneError as exc:
            show_error(exc)
            return
        st.session_state["dataset"] = SAMPLE_NAME
        st.session_state["imported"] = t(
            "dataset.imported", images=result.images, name=result.dataset, seconds=result.seconds
        )
        st.rerun()
