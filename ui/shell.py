"""The app's shell, drawn on every run: page config, language, the login gate, the navigation, the
workspace's state in the sidebar, then the chosen page (``streamlit_app.py`` calls :func:`run`)."""

from __future__ import annotations

import streamlit as st

from core.datasets.catalog import dataset_names
from core.errors import LabelTuneError
from core.jobs.store import live_jobs
from ui.app import app_pages, in_navigation
from ui.auth import login_gate
from ui.common import language_ui, md_message, show_error, t, workspace, workspace_problems
from ui.guard import guarded


def run() -> None:
    st.set_page_config(page_title="LabelTune", page_icon="🏷️", layout="wide")

    language_ui()
    # When .streamlit/secrets.toml configures a login (st.login), no page, link or path shows before it.
    allowed = login_gate()
    navigation = st.navigation(app_pages(), position="sidebar" if allowed else "hidden")
    if not allowed:
        st.stop()
    try:
        ws = workspace()
    except LabelTuneError as exc:  # a locked or damaged store: say so, change nothing
        show_error(exc)
        st.stop()
    for problem in workspace_problems():  # the integrity check at start-up: reported, never repaired silently
        st.sidebar.warning(md_message(problem), icon="🩺")
    st.sidebar.caption(t("app.workspace", path=ws.root))
    if ws.database:  # a team's store: which database (never its password)
        st.sidebar.caption(t("app.store_postgresql", url=ws.store_name))
    st.sidebar.caption(t("app.datasets_count", count=len(dataset_names(ws))))
    busy = live_jobs(ws)
    if busy:  # heavy work goes on in worker processes: one click to see it, wherever it was started
        st.sidebar.page_link("pages/jobs.py", label=t("app.jobs_live", count=len(busy)), icon="⚙️")
    with in_navigation():  # the page runs inside the app (ui.app.through_navigation)
        guarded(navigation.run)()  # an unexpected error: a reference here, its details in the server's log
