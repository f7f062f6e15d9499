"""The Predict page's parts: one image's result (top-k chart, description, not-sure flag, Grad-CAM) and
the batch result (table, CSV, summary chart)."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.errors import LabelTuneError
from core.i18n import render
from core.jobs.store import JobStatus, list_jobs
from core.prediction.jobs import PREDICT_BATCH, batch_results, start_batch
from core.prediction.predict import Prediction, to_csv
from core.store.workspace import SPLITS
from ui.common import lang, md_message, md_text, plot_text, show_error, t, workspace
from ui.jobs import ended_ui, job_ui
from ui.models import gradcam_image, predictor
from ui.uploader import hand_over, job_uploader, streaming_uploader, take


def topk_chart(result: Prediction, key: str) -> None:
    labels = [plot_text(label) for label, _ in result.top][::-1]
    values = [p for _, p in result.top][::-1]
    fig = go.Figure(go.Bar(x=values, y=labels, orientation="h", text=[f"{v:.1%}" for v in values]))
    fig.update_layout(
        height=60 + 34 * len(labels),
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        xaxis_range=[0, 1],
        xaxis_tickformat=".0%",
    )
    st.plotly_chart(fig, key=key)


def result_ui(
    run_id: str, result: Prediction, data: bytes, descriptions: dict[str, str], cam: bool, alpha: float
) -> None:
    """One image: the picture (or its Grad-CAM overlay), the top-k bars, the top class's description."""
    if result.error:
        st.error(md_message(result.error), icon="⚠️")
        return
    left, right = st.columns([1, 2])
    top_label, top_p = result.top[0]
    if cam:
        model = predictor(run_id)
        pixels = model.pixels(data, result.image)
        left.image(
            gradcam_image(run_id, pixels, model.classes.index(top_label), alpha), caption=t("predict.cam_caption")
        )
    else:
        left.image(data, caption=md_text(result.image))
    with right:
        st.markdown(t("predict.top", label=md_text(top_label), p=top_p))
        if descriptions.get(top_label):
            st.caption(t("predict.description", text=descriptions[top_label]))
        if result.not_sure:
            st.warning(t("predict.not_sure", p=top_p), icon="🤔")
        topk_chart(result, key=f"topk_{result.image}")


def batch_job_ui(run_id: str, top_k: int, threshold: float, flip: bool = False) -> None:
    """A zip or a split classified by a batch job: the form, the live job, then its results."""
    ws = workspace()
    source = st.radio(t("predict.batch_source"), ["zip", "split"], format_func=lambda s: t(f"predict.batch_{s}"),
                      key="batch_source", horizontal=True)  # fmt: skip
    archive = split = streamed = None
    if source == "zip":
        st.caption(t("dataset.stream_upload"))
        streamed = streaming_uploader("batch_stream")
        st.caption(t("dataset.small_upload"))
        archive = job_uploader(t("predict.batch_upload"), "batch_zip", type=["zip"])
    else:
        split = st.selectbox(t("eval.split"), SPLITS, index=SPLITS.index("test"), format_func=lambda s: t(f"split.{s}"),
                             key="batch_split")  # fmt: skip
    jobs = list_jobs(ws, kinds=(PREDICT_BATCH.name,), run_id=run_id, limit=1)
    if jobs and jobs[0].live:
        job_ui(jobs[0].id, "batch")
        return
    waiting = source == "zip" and archive is None and streamed is None
    if st.button(t("predict.run_batch"), type="primary", disabled=waiting, key="run_batch"):
        try:
            if archive is None and streamed is not None:  # the streamed zip, owned by the job
                staged, name = take(streamed, "batch_stream")
                options = {"staged": staged, "archive_name": name}
            else:
                options = {"upload": archive, "archive_name": archive.name} if archive is not None else {"split": split}
            job_id = start_batch(ws, run_id, top_k=top_k, threshold=threshold, flip=flip, **options)
        except LabelTuneError as exc:
            show_error(exc)
            return
        if archive is None:
            job_ui(job_id, "batch")
            return
        hand_over(archive, "batch_zip")  # the page runs again and shows the live job
    if jobs and jobs[0].status is JobStatus.COMPLETED:
        batch_ui(batch_results(ws, jobs[0]))
    elif jobs:
        ended_ui(jobs[0])


def batch_ui(results: list[Prediction]) -> None:
    """The table, a CSV download and a chart of how many images each class got."""
    rows = [
        {
            t("predict.col_file"): r.image,
            t("predict.col_top1"): r.top[0][0] if r.top else "",
            t("predict.col_probability"): round(r.top[0][1], 4) if r.top else None,
            t("predict.col_topk"): "; ".join(f"{label} {p:.2f}" for label, p in r.top),
            t("predict.col_not_sure"): r.not_sure,
            t("predict.col_error"): render(r.error, lang()) if r.error else "",
        }
        for r in results
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="batch_table")
    st.download_button(
        t("predict.download_csv"),
        to_csv(results, lang()).encode("utf-8-sig"),  # with BOM: Excel opens Chinese names correctly
        file_name="predictions.csv",
        mime="text/csv",
        key="download_csv",
    )
    counts = Counter(r.top[0][0] for r in results if r.top)
    if counts:
        fig = go.Figure(go.Bar(x=[plot_text(c) for c in counts], y=list(counts.values())))
        fig.update_layout(height=280, margin={"l": 0, "r": 0, "t": 30, "b": 0}, title=t("predict.summary"))
        st.plotly_chart(fig, key="batch_summary")
    failed = sum(1 for r in results if r.error)
    unsure = sum(1 for r in results if r.not_sure)
    st.caption(t("predict.batch_counts", total=len(results), failed=failed, unsure=unsure))
