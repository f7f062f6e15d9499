"""The Train page's "best model in N minutes": a budget, Start, the trials live (a table and score per
trial), the chosen settings and the run they became (``core.training.tune``)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.errors import LabelTuneError
from core.i18n import render
from core.jobs.store import Job, JobStatus, list_jobs
from core.training.tune import TUNE, TUNED, list_trials, start_tune
from ui.common import lang, show_error, t, workspace
from ui.guard import guarded
from ui.jobs import POLL_S, ended_ui, job_ui


def tune_ui(dataset: str) -> None:
    ws = workspace()
    st.caption(t("tune.what"))
    left, right = st.columns([2, 1])
    minutes = left.number_input(t("tune.budget"), min_value=1, max_value=24 * 60, value=10, step=1,
                                key="tune_budget", help=t("tune.budget_help"))  # fmt: skip
    job = _latest(dataset)
    if right.button(t("tune.start"), key="tune_start", disabled=bool(job and job.live)):
        try:
            start_tune(ws, dataset, minutes * 60)
        except LabelTuneError as exc:
            show_error(exc)
        else:
            st.rerun()  # drawn again with the search live (and Start disabled)
    if job is None:
        return
    if job.live:
        job_ui(job.id, "tune")
        st.fragment(guarded(_trials_ui), run_every=POLL_S)(job.id)
        return
    ended_ui(job)
    _trials_ui(job.id)
    if job.status is JobStatus.COMPLETED:
        best = job.result.get("best", {})
        st.success(t("tune.chosen", run=job.result["run"], epochs=job.result.get("fine_tune_epochs", 0)), icon="🎯")
        st.dataframe(pd.DataFrame([{t(f"setting.{k}"): best.get(k) for k in TUNED}]), hide_index=True)


def _latest(dataset: str) -> Job | None:
    for job in list_jobs(workspace(), kinds=(TUNE.name,), limit=20):
        if job.params.get("dataset") == dataset:
            return job
    return None


def _trials_ui(job_id: int) -> None:
    trials = list_trials(workspace(), job_id)
    if not trials:
        return
    rows = [
        {t("tune.col_trial"): tr.number + 1, t("tune.col_state"): t(f"tune.state_{tr.state}"),
         t("metric.log_loss"): tr.val_log_loss, t("metric.accuracy"): tr.val_accuracy,
         **{t(f"setting.{k}"): tr.params.get(k) for k in TUNED}, t("tune.col_seconds"): round(tr.seconds, 1),
         t("tune.col_error"): render(tr.error, lang()) if tr.error else ""}
        for tr in trials
    ]  # fmt: skip
    done = [tr for tr in trials if tr.val_log_loss is not None]
    if done:
        best, best_so_far = float("inf"), []
        for tr in done:
            best = min(best, tr.val_log_loss)
            best_so_far.append(best)
        fig = go.Figure()
        x = [tr.number + 1 for tr in done]
        fig.add_scatter(x=x, y=[tr.val_log_loss for tr in done], mode="markers", name=t("tune.trace_trial"))
        fig.add_scatter(x=x, y=best_so_far, mode="lines", line_shape="hv", name=t("tune.trace_best"))
        fig.update_layout(xaxis_title=t("tune.col_trial"), yaxis_title=t("tune.score"), height=300,
                          margin={"t": 30, "b": 10}, legend={"orientation": "h", "y": 1.15})  # fmt: skip
        st.plotly_chart(fig, key=f"tune_chart_{job_id}", config={"displayModeBar": False})
    st.dataframe(pd.DataFrame(rows), hide_index=True, key=f"tune_trials_{job_id}")
