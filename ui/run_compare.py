"""Compare runs of a dataset: validation curves overlaid, settings side by side with the differing
ones highlighted, and each run's estimated against its real time."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.jobs.store import JobStatus
from core.runs import store as runs
from ui.common import plot_text, t, workspace
from ui.train_views import eta_text, pct

COLOURS = ("#2f6fdf", "#f2a93b", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def compare_view(history: list[runs.Run]) -> None:
    ws = workspace()
    with_metrics = [r for r in history if r.epochs_run or r.status is JobStatus.RUNNING]
    if len(with_metrics) < 2:
        st.info(t("train.compare_need_two"))
        return
    labels = {r.id: r.label for r in with_metrics}
    default = [r.id for r in with_metrics[:2]]
    chosen = st.multiselect(
        t("train.compare_choose"), list(labels), default=default, format_func=labels.get, key="compare_runs"
    )
    picked = [r for r in with_metrics if r.id in chosen]
    if not picked:
        return
    _curves(ws, picked)
    _settings_table(picked)


def _curves(ws, picked: list[runs.Run]) -> None:
    """Validation accuracy and loss per epoch; the head phase solid, fine-tuning dashed."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(t("train.curve_val_accuracy"), t("train.curve_val_loss")))
    for i, run in enumerate(picked):
        epochs = runs.read_metrics(ws, run.id)
        colour = COLOURS[i % len(COLOURS)]
        for phase, dash in (("head", "solid"), ("fine_tune", "dash")):
            rows = [m for m in epochs if m["phase"] == phase]
            if phase == "fine_tune" and rows:  # join the two phases' lines
                rows = [m for m in epochs if m["phase"] == "head"][-1:] + rows
            for col, metric in ((1, "val_accuracy"), (2, "val_loss")):
                fig.add_trace(
                    go.Scatter(
                        x=[m["epoch"] + 1 for m in rows],
                        y=[m.get(metric) for m in rows],
                        name=f"{plot_text(run.label)} · {t(f'train.phase_{phase}')}",
                        legendgroup=run.id,
                        line={"color": colour, "dash": dash},
                        mode="lines+markers",
                        showlegend=col == 1 and bool(rows),
                    ),
                    row=1,
                    col=col,
                )
    fig.update_xaxes(title_text=t("train.curve_epoch"))
    fig.update_layout(height=360, margin={"l": 0, "r": 0, "t": 40, "b": 0}, legend={"orientation": "h", "y": -0.25})
    st.plotly_chart(fig, key="compare_curves")


def _settings_table(picked: list[runs.Run]) -> None:
    """One column per run; rows whose values differ between the runs are highlighted."""
    keys = sorted({k for r in picked for k in r.config.to_dict() if k != "dataset"})
    table = {
        r.label: {
            **{t(f"setting.{k}"): str(r.config.to_dict().get(k, "–")) for k in keys},
            t("train.col_best_val"): pct(r.best.get("val_accuracy")),
            t("train.col_test"): pct(r.final.get("test_accuracy")),
            t("train.col_estimate"): eta_text(r.estimate["total_s"]) if r.estimate else "–",
            t("train.col_actual"): eta_text(r.train_seconds) if r.train_seconds else "–",
        }
        for r in picked
    }
    frame = pd.DataFrame(table)
    differing = frame.nunique(axis=1) > 1
    st.caption(t("train.compare_differing", count=int(differing[: len(keys)].sum())))
    styled = frame.style.apply(
        lambda row: ["background-color: #fff3c4" if differing[row.name] else ""] * len(row), axis=1
    )
    st.dataframe(styled, key="compare_table")
