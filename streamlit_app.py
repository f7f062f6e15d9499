"""LabelTune: navigation, workspace info and the language switch. Run: streamlit run streamlit_app.py"""

import streamlit as st

from core.datasets.catalog import dataset_names
from core.jobs.store import live_jobs
from ui.app import IN_NAVIGATION, app_pages
from ui.common import language_ui, t, workspace

st.set_page_config(page_title="LabelTune", page_icon="🏷️", layout="wide")

ws = workspace()
language_ui()
st.sidebar.caption(t("app.workspace", path=ws.root))
st.sidebar.caption(t("app.datasets_count", count=len(dataset_names(ws))))

navigation = st.navigation(app_pages())
busy = live_jobs(ws)
if busy:  # heavy work goes on in worker processes: one click to see it, wherever it was started
    st.sidebar.page_link("pages/jobs.py", label=t("app.jobs_live", count=len(busy)), icon="⚙️")
st.session_state[IN_NAVIGATION] = True  # the page runs inside the navigation (ui.app.through_navigation)
try:
    navigation.run()
finally:
    st.session_state[IN_NAVIGATION] = False
