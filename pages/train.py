"""Train page: start a run in a worker process, follow it live, stop or resume it, and see past runs."""

import streamlit as st

from core.errors import LabelTuneError
from core.training import runs
from core.training.launcher import start_run
from ui.common import dataset_picker_ui, show_error, t, workspace
from ui.run_panel import run_panel
from ui.train_views import config_form, run_table

ws = workspace()
st.header(t("train.header"))
dataset = dataset_picker_ui("train_dataset")
history = runs.list_runs(ws, dataset)

with st.expander(t("train.new_run"), expanded=not history, icon="🚀"):
    config = config_form(dataset)
    busy = [r.id for r in runs.live_runs(ws)]
    if busy:
        st.warning(t("train.busy", run=busy[0]))
    if st.button(t("train.start"), type="primary", disabled=config is None or bool(busy), key="start"):
        try:
            run_id = start_run(ws, config)
        except LabelTuneError as exc:
            show_error(exc)
        else:
            st.session_state["run"] = run_id
            st.success(t("train.started", run=run_id))
            history = runs.list_runs(ws, dataset)

st.subheader(t("train.history"))
if not history:
    st.info(t("train.no_runs"))
    st.stop()
run_table(history)
ids = [r.id for r in history]
if st.session_state.get("run") not in ids:
    st.session_state["run"] = ids[0]
run_panel(st.selectbox(t("train.choose_run"), ids, key="run"))
