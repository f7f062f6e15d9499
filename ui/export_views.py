"""The Evaluate page's Export section: pick formats, build and check them (an export job: the page never
loads TensorFlow for it, and leaving the page does not stop it), see the numbers that help choose one
(size, latency, test accuracy, agreement with the app), download one zip."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.errors import LabelTuneError
from core.export.config import VARIANTS, ExportConfig
from core.export.exporter import ExportResult, last_export
from core.export.jobs import EXPORT, start_export
from core.i18n import render
from core.jobs.store import list_jobs
from core.runs import store as runs
from core.runs.predictions import flip_helps
from ui.common import lang, show_error, t, workspace
from ui.jobs import ended_ui, job_ui


def export_ui(run: runs.Run) -> None:
    ws = workspace()
    chosen = st.multiselect(
        t("exp.formats"), VARIANTS, default=list(VARIANTS), format_func=lambda v: t(f"exp.variant_{v}"),
        key="export_formats",
    )  # fmt: skip
    helps = flip_helps(ws, run.id)
    flip = bool(helps) and st.checkbox(t("exp.flip"), key="export_flip", help=t("help.export_flip"))
    if helps is None:
        st.caption(t("exp.flip_unknown"))
    elif not helps:
        st.caption(t("exp.flip_not_helping"))
    jobs = list_jobs(ws, kinds=(EXPORT.name,), run_id=run.id, limit=1)
    if jobs and jobs[0].live:
        st.caption(t("exp.building"))
        job_ui(jobs[0].id, "export")
    else:
        if jobs:
            ended_ui(jobs[0])
        if st.button(t("exp.build"), key="export_build", disabled=not chosen, icon="📦"):
            try:
                job_id = start_export(ws, ExportConfig(run.id, tuple(chosen), flip=flip))
            except LabelTuneError as exc:
                show_error(exc)
            else:
                st.caption(t("exp.building"))
                job_ui(job_id, "export")
    result = last_export(ws, run.id)
    if result is None:
        st.caption(t("exp.none_yet"))
        return
    _result_ui(result)
    _family_ui(run)


def _family_ui(run: runs.Run) -> None:
    """Teacher and students side by side: every exported format of each, in one table."""
    ws = workspace()
    teacher = run.config.teacher
    family = [r for r in runs.list_runs(ws, run.dataset_name) if r.id == teacher or r.config.teacher == run.id]
    exported = [(r, last_export(ws, r.id)) for r in [run, *family]]
    exported = [(r, e) for r, e in exported if e is not None]
    if not family or len(exported) < 2:
        return
    st.caption(t("exp.family"))
    rows = [
        {
            t("exp.col_run"): f"{r.label} · {r.config.backbone}"
            + (f" ({t('exp.student')})" if r.config.teacher else f" ({t('exp.teacher')})"),
            t("exp.col_format"): t(f"exp.variant_{c.variant}"),
            t("exp.col_size"): f"{c.size_bytes / 1e6:.2f} MB",
            t("exp.col_latency"): f"{c.latency_ms} ms",
            t("exp.col_accuracy"): "–" if c.accuracy is None else f"{c.accuracy:.1%}",
        }
        for r, e in exported
        for c in e.checked
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="export_family")


def _result_ui(result: ExportResult) -> None:
    ws = workspace()
    st.caption(t("exp.checked", images=result.images, accuracy=f"{result.app_accuracy:.1%}",
                 latency=result.app_latency_ms, when=result.created_at[:16].replace("T", " ")))  # fmt: skip
    if result.flip:
        st.caption(t("exp.flip_built_in"))
    rows = [
        {
            t("exp.col_format"): t(f"exp.variant_{c.variant}"),
            t("exp.col_size"): f"{c.size_bytes / 1e6:.2f} MB",
            t("exp.col_latency"): f"{c.latency_ms} ms",
            t("exp.col_accuracy"): "–" if c.accuracy is None else f"{c.accuracy:.1%}",
            t("exp.col_agreement"): "–" if c.agreement is None else f"{c.agreement:.1%}",
            t("exp.col_offered"): "✅" if c.offered else render(c.reason, lang()),
        }
        for c in result.checked
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="export_table")
    check = result.predict_py
    if check:
        key = "exp.predict_py_ok" if check.get("agrees") else "exp.predict_py_bad"
        st.caption(t(key, model=check["model"], top1=check.get("top1") or "?", expected=check["expected"]))
    path = ws.root / result.zip_path
    if path.exists():
        st.download_button(
            t("exp.download", size=f"{path.stat().st_size / 1e6:.1f}"), path.read_bytes(), file_name=path.name,
            mime="application/zip", key="export_download", icon="⬇️",
        )  # fmt: skip
