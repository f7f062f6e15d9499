"""Jobs page: every running, queued and recent job of every kind (training, imports, exports, estimates,
...), wherever it was started (this app, another tab, the command line), with progress, elapsed time,
cancel and, for a job that failed, why, in the reader's language."""

import streamlit as st

from core.jobs import launcher, queue
from core.jobs.store import Resource, list_jobs, live_jobs
from ui.app import through_navigation
from ui.common import t, workspace
from ui.guard import guarded
from ui.jobs import POLL_S, jobs_table_ui, live_job_row_ui

through_navigation()  # run on its own (a deep link to a fresh server), the page opens inside the app

RECENT = 30  # ended jobs listed

ws = workspace()
st.header(t("nav.jobs"))
slots = queue.slots(ws)
st.caption(t("jobs.settings", launcher=launcher.template(ws) or t("jobs.launcher_local"),
             exclusive=slots[Resource.EXCLUSIVE], light=slots[Resource.LIGHT]))  # fmt: skip


@st.fragment(run_every=POLL_S)
@guarded
def live_ui() -> None:
    queue.schedule(ws)  # an explicit look: a dead worker's job is marked, the next job starts
    live = live_jobs(ws)
    st.subheader(t("jobs.live", count=len(live)))
    if not live:
        st.caption(t("jobs.none_live"))
    for job in live:
        live_job_row_ui(job)


live_ui()
st.subheader(t("jobs.recent"))
jobs_table_ui([j for j in list_jobs(ws, limit=RECENT + 50) if not j.live][:RECENT])
