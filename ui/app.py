"""The app's pages in one place: the entry point (``streamlit_app.py``) navigates between them, and a
page that Streamlit ran without it hands over to it (:func:`through_navigation`)."""

from __future__ import annotations

import runpy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from ui.common import t

# Set by the entry point while its navigation runs a page. Per script thread, in plain Python: a session
# state key was left set when a page stopped (Streamlit ignored the reset in the entry point's `finally`
# after st.stop), and every later page that Streamlit ran on its own then skipped the app.
_RUNNING = threading.local()
ENTRY_POINT = Path(__file__).resolve().parents[1] / "streamlit_app.py"


def app_pages() -> list[st.Page]:
    """The pages in the sidebar, plus ``/dataset`` for the Dataset page: Streamlit serves the default page
    at ``/`` only (its ``url_path`` is reserved but never matched), so once a tab has run the app, opening
    ``/dataset`` (the address the README names) would say "Page not found". A hidden page answers there."""
    dataset = {"title": t("nav.dataset"), "icon": "🗂️"}
    return [
        st.Page("pages/dataset.py", **dataset, url_path="home", default=True),
        st.Page("pages/dataset.py", **dataset, url_path="dataset", visibility="hidden"),
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
    if getattr(_RUNNING, "page", False):
        return
    runpy.run_path(str(ENTRY_POINT), run_name="__main__")  # the script, not the ASGI app
    st.stop()


@contextmanager
def in_navigation() -> Iterator[None]:
    """The entry point runs its navigation's page inside this: the page's :func:`through_navigation`
    then returns at once."""
    _RUNNING.page = True
    try:
        yield
    finally:
        _RUNNING.page = False
