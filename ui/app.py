"""The app's pages in one place: the entry point (``streamlit_app.py``) navigates between them, and a
page that Streamlit ran without it hands over to it (:func:`through_navigation`)."""

from __future__ import annotations

import runpy
from pathlib import Path

import streamlit as st

from ui.common import t

IN_NAVIGATION = "_labeltune_in_navigation"  # set by the entry point while it runs a page
ENTRY_POINT = Path(__file__).resolve().parents[1] / "streamlit_app.py"


def app_pages() -> list[st.Page]:
    return [
        st.Page("pages/dataset.py", title=t("nav.dataset"), icon="🗂️", url_path="dataset", default=True),
        st.Page("pages/label.py", title=t("nav.label"), icon="🏷️", url_path="label"),
        st.Page("pages/train.py", title=t("nav.train"), icon="🏋️", url_path="train"),
        st.Page("pages/evaluate.py", title=t("nav.evaluate"), icon="📊", url_path="evaluate"),
        st.Page("pages/predict.py", title=t("nav.predict"), icon="🔮", url_path="predict"),
        st.Page("pages/jobs.py", title=t("nav.jobs"), icon="⚙️", url_path="jobs"),
    ]


def through_navigation() -> None:
    """Called first by every page. When Streamlit runs a page file on its own (it finds pages by the
    ``pages/`` folder until an app calls ``st.navigation``: the first visit to a freshly started server
    that is a deep link such as ``/label``, and every run under ``AppTest``), run the entry point
    instead, whose navigation runs this same page inside the app (its layout, sidebar, language and
    navigation), then end this outer run. Inside the entry point it returns at once."""
    if st.session_state.get(IN_NAVIGATION):
        return
    runpy.run_path(str(ENTRY_POINT))
    st.stop()
