"""Train page: pick a preset or settings, see the estimate, preview and learning rate; start (or queue)
a run that trains in a worker process; follow, stop, resume, compare, annotate and delete runs."""

import streamlit as st

from core.datasets.catalog import load_dataset
from core.errors import LabelTuneError
from core.jobs import queue
from core.runs import store as runs
from core.training.jobs import start_run
from ui.app import through_navigation
from ui.common import dataset_picker_ui, show_error, t, workspace
from ui.run_compare import compare_view
from ui.run_panel import run_panel
from ui.train_form import config_form
from ui.train_plan import advice_ui, custom_note, estimate_ui, lr_finder_ui, preset_ui, preview_ui, training_data
from ui.train_queue import queue_panel
from ui.train_tune import tune_ui
from ui.train_views import run_table
from ui.train_zero_shot import zero_shot_ui

through_navigation()  # run on its own (a deep link to a fresh server), the page opens inside the app

ws = workspace()
st.header(t("train.header"))
dataset = dataset_picker_ui("train_dataset")
queue_panel()
history = runs.list_runs(ws, dataset)

with st.expander(t("train.new_run"), expanded=not history, icon="🚀"):
    preset_ui()
    data = training_data(dataset)
    if data is not None:
        advice_ui(dataset, data)
    config = config_form(dataset)
    if config is not None:
        custom_note(config)
    if config is not None and data is not None:
        estimate_ui(config, data)
        left, right = st.columns(2)
        with left:
            preview_ui(config, data)
        with right:
            lr_finder_ui(config, data)
    busy = runs.live_runs(ws)
    if busy:
        st.info(t("train.will_queue", count=len(busy)), icon="⏳")
    if st.button(t("train.start"), type="primary", disabled=config is None, key="start"):
        try:
            run_id = start_run(ws, config)
        except LabelTuneError as exc:
            show_error(exc)
        else:
            st.session_state["run"] = run_id
            position = queue.position(ws, runs.get_run(ws, run_id).job.id) if busy else None
            st.success(t("train.queued", run=run_id, position=position) if position else t("train.started", run=run_id))
            history = runs.list_runs(ws, dataset)

with st.expander(t("tune.header"), icon="🎯"):
    tune_ui(dataset)

descriptions = load_dataset(ws, dataset).descriptions
if any(descriptions.values()):  # a first model from the class descriptions
    with st.expander(t("zero.header"), icon="💬"):
        zero_shot_ui(dataset, descriptions)

st.subheader(t("train.history"))
if not history:
    st.info(t("train.no_runs"))
    st.stop()
run_table(dataset, history)
one, many = st.tabs([t("train.tab_run"), t("train.tab_compare")])
with one:
    ids = [r.id for r in history]
    labels = {r.id: r.label for r in history}
    if st.session_state.get("run") not in ids:
        st.session_state["run"] = ids[0]
    run_panel(st.selectbox(t("train.choose_run"), ids, format_func=labels.get, key="run"))
with many:
    compare_view(history)
