"""LabelTune: navigation, workspace info and the language switch. Run: streamlit run streamlit_app.py"""

import streamlit as st

from core.datasets.catalog import dataset_names
from core.jobs.store import live_jobs
from ui.common import language_ui, t, workspace

st.set_page_config(page_title="LabelTune", page_icon="🏷️", layout="wide")

ws = workspace()
language_ui()
st.sidebar.caption(t("app.workspace", path=ws.root))
st.sidebar.caption(t("app.datasets_count", count=len(dataset_names(ws))))

pages = [
    st.Page("pages/dataset.py", title=t("nav.dataset"), icon="🗂️", url_path="dataset", default=True),
    st.Page("pages/label.py", title=t("nav.label"), icon="🏷️", url_path="label"),
    st.Page("pages/train.py", title=t("nav.train"), icon="🏋️", url_path="train"),
    st.Page("pages/evaluate.py", title=t("nav.evaluate"), icon="📊", url_path="evaluate"),
    st.Page("pages/predict.py", title=t("nav.predict"), icon="🔮", url_path="predict"),
    st.Page("pages/jobs.py", title=t("nav.jobs"), icon="⚙️", url_path="jobs"),
]
navigation = st.navigation(pages)
busy = live_jobs(ws)
if busy:  # heavy work goes on in worker processes: one click to see it, wherever it was started
    st.sidebar.page_link("pages/jobs.py", label=t("app.jobs_live", count=len(busy)), icon="⚙️")
navigation.run()
