"""The Evaluate page's parts: headline, per-class table, confusion matrix, galleries, calibration, curves."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.datasets.catalog import images_by_id
from core.evaluation import metrics
from core.evaluation.jobs import PREDICTIONS, start_predictions
from core.jobs.store import list_jobs
from core.runs import store as runs
from core.runs.predictions import SplitPredictions
from core.store.vocabulary import EVALUATED_SPLITS
from ui.common import cell, md_text, plot_text, t, workspace
from ui.jobs import ended_ui, job_ui
from ui.models import gradcam_image, predictor
from ui.train_views import pct

GALLERY_COLUMNS = 6


def missing_predictions_ui(run_id: str, split: str, flip: bool = False) -> None:
    """Predictions not stored yet (an older run, the train split, or flip-averaged ones asked for): a
    predictions job computes them."""
    jobs = list_jobs(workspace(), kinds=(PREDICTIONS.name,), run_id=run_id, limit=1)
    if jobs and jobs[0].live:
        job_ui(jobs[0].id, "predictions")
        return
    if jobs:
        ended_ui(jobs[0])
    st.info(t("eval.no_flip_predictions" if flip else "eval.no_predictions", split=t(f"split.{split}")))
    if st.button(t("eval.compute"), type="primary", key="compute_predictions"):
        splits = (split,) if split == "train" else EVALUATED_SPLITS
        job_ui(start_predictions(workspace(), run_id, splits, flip=flip), "predictions")


def headline_ui(figures: dict[str, float], run: runs.Run) -> None:
    cols = st.columns(6)
    cols[0].metric(t("metric.accuracy"), pct(figures.get("accuracy")))
    cols[1].metric(t("metric.macro_f1"), f"{figures.get('macro_f1', 0):.3f}")
    cols[2].metric(t("metric.top3_accuracy"), pct(figures.get("top3_accuracy")))
    cols[3].metric(t("metric.log_loss"), f"{figures.get('log_loss', 0):.3f}", help=t("metric.log_loss_help"))
    cols[4].metric(t("eval.images"), int(figures.get("images", 0)))
    cols[5].metric(t("eval.run_val"), pct(run.best.get("val_accuracy")), help=t("eval.run_val_help"))


def class_table_ui(p: SplitPredictions, descriptions: dict[str, str]) -> None:
    rows = metrics.per_class(p)
    fair = metrics.fairness(rows)
    frame = pd.DataFrame(
        [
            {
                t("eval.col_class"): r["class"],
                t("eval.col_precision"): round(r["precision"], 3),
                t("eval.col_recall"): round(r["recall"], 3),
                t("eval.col_f1"): round(r["f1"], 3),
                t("eval.col_support"): r["support"],
                t("eval.col_description"): descriptions.get(r["class"], ""),
            }
            for r in rows
        ]
    )
    worst = fair["worst"] if fair and not fair["even"] else None
    styled = frame.style.format(precision=3).apply(
        lambda row: ["background-color: #fde2e1" if row.iloc[0] == worst else "" for _ in row], axis=1
    )
    st.dataframe(styled, hide_index=True, key="class_metrics")
    if fair and fair["even"]:
        st.caption(t("eval.fairness_even", f1=fair["worst_f1"]))
    elif fair:
        st.caption(t("eval.fairness", worst=md_text(fair["worst"]), f1=fair["worst_f1"], **_spread(fair)))


def _spread(fair: dict[str, Any]) -> dict[str, Any]:
    return {
        "best": md_text(fair["best_recall_class"]),
        "best_recall": fair["best_recall"],
        "low": md_text(fair["worst_recall_class"]),
        "low_recall": fair["worst_recall"],
        "spread": fair["recall_spread"],
    }


def confusion_ui(p: SplitPredictions, normalise: bool) -> tuple[int, int]:
    """The heatmap (rows true, columns predicted); returns the cell chosen below it."""
    matrix = metrics.confusion(p, normalise)
    n = len(p.classes)
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=[plot_text(c) for c in p.classes],
            y=[plot_text(c) for c in p.classes],
            colorscale="Blues",
            text=np.round(matrix, 2) if normalise else matrix,
            texttemplate="%{text}" if n <= 15 else None,
            hovertemplate=t("eval.cell_hover") + "<extra></extra>",
        )
    )
    side = min(900, 240 + 28 * n)
    fig.update_layout(height=side, margin={"l": 0, "r": 0, "t": 10, "b": 0}, xaxis_title=t("eval.predicted"))
    fig.update_yaxes(autorange="reversed", title_text=t("eval.true"))
    st.plotly_chart(fig, key="confusion")
    left, right = st.columns(2)
    classes = list(range(n))
    true = left.selectbox(t("eval.true"), classes, format_func=lambda i: p.classes[i], key="cell_true")
    predicted = right.selectbox(t("eval.predicted"), classes, format_func=lambda i: p.classes[i], key="cell_pred")
    return true, predicted


def gallery_ui(
    run_id: str, ids: list[int], captions: list[str] | None, classes: list[int], key: str, alpha: float
) -> None:
    """Thumbnails with captions (default: the file names); with Grad-CAM on, the model's view with its
    heatmap for the given class."""
    if not ids:
        st.caption(t("eval.no_images"))
        return
    records = images_by_id(workspace(), ids)
    cam = st.toggle(t("eval.gradcam"), key=f"{key}_cam", help=t("eval.gradcam_help"))
    columns = st.columns(GALLERY_COLUMNS)
    for i, (image_id, caption, cls) in enumerate(zip(ids, captions or [None] * len(ids), classes, strict=True)):
        record = records.get(image_id)
        if record is None:
            continue
        caption = md_text(caption or record.name.rsplit("/", 1)[-1])  # captions are Markdown: names as typed
        if cam:
            pixels = predictor(run_id).pixels(record.path.read_bytes(), record.name)
            columns[i % GALLERY_COLUMNS].image(gradcam_image(run_id, pixels, cls, alpha), caption=caption)
        else:
            columns[i % GALLERY_COLUMNS].image(cell(str(record.thumb)), caption=caption)


def calibration_ui(p: SplitPredictions) -> None:
    cal = metrics.calibration(p)
    bins = cal["bins"]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "grey"}, name="y = x"))
    fig.add_trace(
        go.Bar(
            x=[b["confidence"] for b in bins],
            y=[b["accuracy"] for b in bins],
            width=0.08,
            text=[b["count"] for b in bins],
            name=t("metric.accuracy"),
        )
    )
    fig.update_layout(
        height=320,
        margin={"l": 0, "r": 0, "t": 10, "b": 0},
        xaxis_title=t("eval.confidence"),
        yaxis_title=t("metric.accuracy"),
        xaxis_range=[0, 1],
        yaxis_range=[0, 1],
        showlegend=False,
    )
    st.plotly_chart(fig, key="calibration")
    st.caption(t("eval.ece", ece=cal["ece"]))


def binary_ui(p: SplitPredictions) -> None:
    curves = metrics.binary_curves(p)
    if curves is None:
        return
    left, right = st.columns(2)
    for column, kind, x, y, area in (
        (left, "roc", curves["roc"]["fpr"], curves["roc"]["tpr"], curves["roc"]["auc"]),
        (right, "pr", curves["pr"]["recall"], curves["pr"]["precision"], curves["pr"]["ap"]),
    ):
        fig = go.Figure(go.Scatter(x=x, y=y, mode="lines"))
        fig.update_layout(
            height=300,
            margin={"l": 0, "r": 0, "t": 30, "b": 0},
            title=t(f"eval.{kind}_title", area=area, positive=plot_text(curves["positive"])),
            xaxis_title=t(f"eval.{kind}_x"),
            yaxis_title=t(f"eval.{kind}_y"),
        )
        column.plotly_chart(fig, key=f"{kind}_curve")


def compare_ui(a: SplitPredictions, b: SplitPredictions, a_id: str, b_id: str) -> None:
    diff = metrics.compare(a, b)
    head = pd.DataFrame(
        [
            {t("eval.col_metric"): t(f"metric.{k}"), a_id: v["a"], b_id: v["b"], t("eval.col_diff"): v["diff"]}
            for k, v in diff["headline"].items()
        ]
    )
    st.dataframe(head.round(4), hide_index=True, key="compare_headline")
    rows = pd.DataFrame(diff["per_class"]).rename(columns={"class": t("eval.col_class")})
    st.dataframe(rows.round(3), hide_index=True, key="compare_classes")
