"""A job as a page shows it: live progress with a Cancel button (a fragment that polls the workspace),
then how it ended. Heavy work never runs in the page: a button queues a job (``core.jobs``) and returns,
and the page finds its job again in the workspace when the user comes back."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from core.errors import LabelTuneError
from core.i18n import render
from core.jobs import queue
from core.jobs.store import Job, JobStatus, get_job
from ui.common import lang, md_message, md_text, show_error, t, workspace
from ui.guard import guarded

POLL_S = 1.5  # seconds between two looks at a live job


def elapsed_s(job: Job) -> float:
    """Seconds since the job started (or was queued), to its end or to now."""
    start = job.started_at or job.created_at
    end = datetime.fromisoformat(job.ended_at) if job.ended_at else datetime.now(timezone.utc)
    return max((end - datetime.fromisoformat(start)).total_seconds(), 0.0)


def phase_text(job: Job) -> str:
    """What a live job is doing now, in the reader's language."""
    if job.status is JobStatus.QUEUED:
        position = queue.position(workspace(), job.id)
        return t("job.waiting", position=position or 1) if job.dispatched_at is None else t("job.starting")
    text = md_message(job.phase) or t("job.working")
    return f"{text} · {job.done}/{job.total}" if job.total else text


def job_ui(job_id: int, key: str) -> None:
    """A live job's progress, polled every ``POLL_S`` seconds, with Cancel; when it ends the whole page
    reruns once (and shows the result the page reads from the workspace)."""
    st.fragment(guarded(_live), run_every=POLL_S)(job_id, key)


def _live(job_id: int, key: str) -> None:
    ws = workspace()
    queue.schedule(ws)  # an explicit look: a dead worker's job is marked, the next job starts
    job = get_job(ws, job_id)
    if not job.live:
        st.rerun()  # it ended: the page draws its result, and this fragment is no longer drawn
    _progress_row(job, key)


def _progress_row(job: Job, key: str) -> None:
    """The bar (what, how far, how long) and Cancel, or "stopping" once asked."""
    left, right = st.columns([5, 1])
    left.progress(job.fraction, text=f"{phase_text(job)} · ⏱️ {int(elapsed_s(job))} s")
    if job.stop_requested:
        right.caption(t("job.stopping"))
    elif right.button(t("job.cancel"), key=f"{key}_cancel_{job.id}", icon="✖️"):
        try:
            queue.cancel(workspace(), job.id)
        except LabelTuneError as exc:  # it ended between the poll and the click
            show_error(exc)
        else:
            st.rerun()  # the page as it is now: the job off the queue, or stopping


def ended_ui(job: Job) -> None:
    """How an ended job ended, when that is news: its error, an interruption or a cancel."""
    if job.status is JobStatus.FAILED or job.status is JobStatus.INTERRUPTED:
        st.error(md_message(job.error) or t(f"status.{job.status}"), icon="⚠️")
    elif job.status is JobStatus.CANCELLED:
        st.info(t("job.cancelled", kind=t(f"job.kind_{job.kind}")), icon="✖️")


def live_job_row_ui(job: Job) -> None:
    """One live job on the Jobs page: what it is, its progress, Cancel."""
    about = job.run_id or job.params.get("archive_name") or ""
    st.markdown(f"**{t(f'job.kind_{job.kind}')}** · #{job.id}")
    if about:
        st.text(about)  # a run id or an archive's name: shown as typed
    if job.host and job.status is JobStatus.RUNNING:
        st.caption(t("jobs.on_host", host=md_text(job.host)))  # a machine's name, shown as named
    _progress_row(job, "jobs")


def jobs_table_ui(jobs: list[Job]) -> None:
    """Ended jobs, newest first: kind, status, what it was about, when, how long, and the error if any."""
    if not jobs:
        st.caption(t("jobs.none_recent"))
        return
    rows = [
        {
            t("jobs.col_id"): job.id,
            t("jobs.col_kind"): t(f"job.kind_{job.kind}"),
            t("jobs.col_status"): t(f"status.{job.status}"),
            t("jobs.col_about"): job.run_id or job.params.get("archive_name") or "",
            t("jobs.col_host"): job.host or "",  # which machine ran it: a team's workers run on several
            t("jobs.col_ended"): (job.ended_at or "")[:19].replace("T", " "),
            t("jobs.col_seconds"): round(elapsed_s(job), 1),
            t("jobs.col_error"): render(job.error, lang()),
        }
        for job in jobs
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="jobs_table")
