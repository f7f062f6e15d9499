"""The Train page's parts: the run history table and the loss/accuracy curves (the form: ui.train_form)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.runs import store as runs
from ui.common import t, workspace
from ui.guard import guarded

POLL_S = 2.0  # seconds between two looks at a live run


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def run_table(dataset: str, history: list[runs.Run]) -> None:
    """The dataset's runs; while one is queued or running, a fragment that re-reads them every ``POLL_S``
    seconds (so its status and epochs follow the run as the panel under it does)."""
    live = any(r.live for r in history)
    st.fragment(guarded(_run_table), run_every=POLL_S if live else None)(dataset, live)


def _run_table(dataset: str, was_live: bool) -> None:
    history = runs.list_runs(workspace(), dataset)
    if was_live and not any(r.live for r in history):
        st.rerun()  # the last live run just ended: the whole page draws its result, and polling stops
    rows = [
        {
            t("train.col_run"): r.id,
            t("train.col_title"): r.title,
            t("train.col_status"): t(f"status.{r.status}"),
            t("train.col_backbone"): r.config.backbone,
            t("train.col_weights"): r.weights_used or "–",
            t("train.col_epochs"): r.epochs_run,
            t("train.col_best_val"): pct(r.best.get("val_accuracy")),
            t("train.col_test"): pct(r.final.get("test_accuracy")),
            t("train.col_estimate"): eta_text(r.estimate["total_s"]) if r.estimate else "–",
            t("train.col_actual"): eta_text(r.train_seconds) if r.train_seconds else "–",
            t("train.col_started"): r.created_at[:16].replace("T", " "),
        }
        for r in history
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="run_table")


def curves(epochs: list[dict]) -> None:
    """Loss and accuracy per epoch, train and validation, with the fine-tuning start marked."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(t("train.curve_loss"), t("train.curve_accuracy")))
    x = [m["epoch"] + 1 for m in epochs]
    for col, metric in ((1, "loss"), (2, "accuracy")):
        for prefix, series, dash in (("", "train.series_train", "solid"), ("val_", "train.series_val", "dot")):
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=[m.get(prefix + metric) for m in epochs],
                    name=t(series),
                    line={"dash": dash, "color": "#2f6fdf" if prefix else "#f2a93b"},
                    showlegend=col == 1,
                    mode="lines+markers",
                ),
                row=1,
                col=col,
            )
    fine = [m["epoch"] + 1 for m in epochs if m["phase"] == "fine_tune"]
    if fine:
        fig.add_vline(x=fine[0] - 0.5, line_dash="dash", line_color="grey")
    fig.update_xaxes(title_text=t("train.curve_epoch"))
    fig.update_layout(
        height=400,
        margin={"l": 0, "r": 0, "t": 70, "b": 0},  # the subplot titles sit below the mode bar (top right, on hover)
        # Under the plots: at the top right the legend sat beneath Plotly's mode bar, which covered it.
        legend={"orientation": "h", "x": 0.5, "xanchor": "center", "y": -0.22, "yanchor": "top"},
    )
    st.plotly_chart(fig, key="curves")


def eta_text(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
