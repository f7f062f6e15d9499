"""The queue: the running run and the runs waiting after it, with cancel and move-up.

While anything is queued or running this is a fragment that polls the workspace; each poll calls the
scheduler (an explicit sweep: a dead worker's run is marked interrupted and the next queued run's
worker starts), so the queue moves on even when a worker died without a word."""

from __future__ import annotations

import streamlit as st

from core.errors import LabelTuneError
from core.jobs import queue
from core.jobs.store import JobStatus
from core.runs import store as runs
from ui.common import md_text, show_error, t, workspace
from ui.guard import guarded
from ui.train_views import POLL_S, eta_text


def queue_panel() -> None:
    live = bool(runs.live_runs(workspace()))
    st.fragment(guarded(_queue), run_every=POLL_S if live else None)(live)


def _queue(was_live: bool) -> None:
    ws = workspace()
    queue.schedule(ws)
    live = runs.live_runs(ws)
    if was_live and not live:
        st.rerun()  # the last run ended: refresh the page once and stop polling
    if not live:
        return
    st.subheader(t("train.queue"))
    positions = {r.id: i + 1 for i, r in enumerate(r for r in live if r.status is JobStatus.QUEUED)}
    for run in live:
        cols = st.columns([5, 2, 1, 1])
        position = positions.get(run.id)
        if run.status is JobStatus.RUNNING:
            where = t("train.queue_running")
        elif run.job.dispatched_at is not None and position == 1:
            where = t("train.queue_starting")
        else:
            where = t("train.queue_position", position=position)
        guess = eta_text(run.estimate["total_s"]) if run.estimate else "–"
        cols[0].markdown(f"**{md_text(run.label)}** · {md_text(run.dataset_name)} · {md_text(run.config.backbone)}")
        cols[1].caption(f"{where} · ⏱️ {guess}")
        if run.status is not JobStatus.QUEUED:
            continue
        try:
            if position > 1 and cols[2].button(t("train.up"), key=f"up_{run.id}", help=t("train.queue_up"), icon="⬆️"):
                queue.move_up(ws, run.job.id)
                st.rerun(scope="fragment")
            if cols[3].button(t("train.cancel"), key=f"cancel_{run.id}", help=t("train.queue_cancel"), icon="✖️"):
                queue.cancel(ws, run.job.id)
                st.rerun()
        except LabelTuneError as exc:  # it started (or ended) between the poll and the click
            show_error(exc)
