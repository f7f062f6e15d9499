"""The Train page's parts: the new-run form, the run history table and the loss/accuracy curves."""

from __future__ import annotations

from dataclasses import Field
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.errors import LabelTuneError
from core.i18n import has_message
from core.runs import store as runs
from core.runs.backbones import BACKBONES
from core.runs.config import TrainConfig
from ui.common import show_error, t, workspace
from ui.guard import guarded

POLL_S = 2.0  # seconds between two looks at a live run
WEIGHT_CHOICES = ("imagenet", "none", "file")


def _choice_label(name: str, value: str) -> str:
    """``choice.<field>_<value>``, else ``choice.<value>``, else the value itself (a backbone's name)."""
    for key in (f"choice.{name}_{value}", f"choice.{value}"):
        if has_message(key):
            return t(key)
    return value


def setting_widget(
    container: Any,
    f: Field,
    format_func: Any = None,
    *,
    prefix: str = "tr_",
    texts: tuple[str, str] | None = None,
    **label_params: Any,
) -> Any:
    """The widget of one config field, from its metadata: label, help, choices, range, default.
    ``TrainConfig``'s fields by default (labels ``setting.<name>``, helps ``help.<name>``); another
    config's with its own key ``prefix`` and ``texts`` (its label and help).

    The default goes into the session state rather than the widget, so a preset can fill the form
    (``ui.train_plan``) without Streamlit's "default value and Session State both set" warning."""
    meta, default, key = f.metadata, f.default, f"{prefix}{f.name}"
    label, help_text = texts or (t(f"setting.{f.name}", **label_params), t(f"help.{f.name}"))
    st.session_state.setdefault(key, default)
    if isinstance(default, bool):
        return container.toggle(label, key=key, help=help_text)
    if meta["choices"] is not None:
        fmt = format_func or (lambda v: _choice_label(f.name, v))
        return container.selectbox(label, meta["choices"], format_func=fmt, key=key, help=help_text)
    if meta["low"] is not None:
        kind = type(default)
        return container.number_input(
            label,
            kind(meta["low"]),
            kind(meta["high"]),
            step=kind(meta["step"] or 1),
            format="%.1e" if kind is float and 0 < (meta["step"] or 1) < 1e-3 else None,  # rates, weight decay
            key=key,
            help=help_text,
        )
    return container.text_input(label, key=key, help=help_text).strip()


def _weights_ui(column: Any) -> str:
    """ImageNet, none, or a file on this machine: the one field that is a choice or a path."""
    st.session_state.setdefault("tr_weights", "imagenet")
    choice = column.radio(
        t("setting.weights"),
        WEIGHT_CHOICES,
        format_func=lambda w: t(f"train.weights_{w}"),
        key="tr_weights",
        help=t("help.weights"),
    )
    path = column.text_input(t("train.weights_path"), key="tr_weights_path", disabled=choice != "file")
    return path.strip() if choice == "file" else choice


def _teacher_ui(dataset: str) -> str:
    """Knowledge distillation's teacher: none, or a run of this dataset with a saved model."""
    teachers = {r.id: r for r in runs.model_runs(workspace(), dataset)}
    options = ["", *teachers]
    if st.session_state.get("tr_teacher") not in options:
        st.session_state["tr_teacher"] = ""
    return st.selectbox(
        t("setting.teacher"), options, key="tr_teacher", help=t("help.teacher"),
        format_func=lambda i: t("train.no_teacher") if not i else f"{teachers[i].label} · {teachers[i].config.backbone}",
    )  # fmt: skip


def config_form(dataset: str) -> TrainConfig | None:
    """The new-run settings, one widget per field; the config, or None (with the reason shown) when invalid."""
    by_name = {f.name: f for f in TrainConfig.user_fields()}
    backbone = setting_widget(st, by_name.pop("backbone"), lambda n: f"{BACKBONES[n].friendly} · {n}")
    st.caption(t(BACKBONES[backbone].description))
    values: dict[str, Any] = {"dataset": dataset, "backbone": backbone}
    left, right = st.columns(2)
    by_name.pop("weights")
    values["weights"] = _weights_ui(left)
    values["image_size"] = setting_widget(right, by_name.pop("image_size"), size=BACKBONES[backbone].default_size)
    columns = st.columns(3)
    for i, f in enumerate(f for f in by_name.values() if f.metadata["basic"]):
        values[f.name] = setting_widget(columns[i % 3], f)
    by_name.pop("teacher")
    with st.expander(t("train.advanced"), icon="⚙️"):
        advanced = [f for f in by_name.values() if not f.metadata["basic"]]
        columns = st.columns(3)
        for i, f in enumerate(advanced):
            values[f.name] = setting_widget(columns[i % 3], f)
        values["teacher"] = _teacher_ui(dataset)
    try:
        config = TrainConfig(**values)
        config.check_files()
        return config
    except LabelTuneError as exc:
        show_error(exc)
        return None


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
