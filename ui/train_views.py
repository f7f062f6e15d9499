"""The Train page's parts: the new-run form, the run history table and the loss/accuracy curves."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.errors import LabelTuneError
from core.training import runs
from core.training.backbones import BACKBONES
from core.training.config import AUGMENT_PRESETS, DEFAULTS, TrainConfig
from ui.common import show_error, t

POLL_S = 2.0  # seconds between two looks at a live run
WEIGHT_CHOICES = ("imagenet", "none", "file")


def _number(column, key: str, low: float, high: float, **kw) -> float:
    return column.number_input(t(f"train.{key}"), low, high, DEFAULTS[key], key=f"tr_{key}", **kw)


def config_form(dataset: str) -> TrainConfig | None:
    """The new-run settings; the config, or None (with the reason shown) when a field is invalid."""
    names = list(BACKBONES)
    backbone = st.selectbox(
        t("train.backbone"),
        names,
        index=names.index(DEFAULTS["backbone"]),
        format_func=lambda n: f"{BACKBONES[n].friendly} · {n}",
        key="tr_backbone",
    )
    st.caption(t(BACKBONES[backbone].description))
    left, right = st.columns(2)
    choice = left.radio(
        t("train.weights"), WEIGHT_CHOICES, format_func=lambda w: t(f"train.weights_{w}"), key="tr_weights"
    )
    path = right.text_input(t("train.weights_path"), key="tr_weights_path", disabled=choice != "file")
    size = right.number_input(
        t("train.image_size", size=BACKBONES[backbone].default_size), 0, 1024, 0, step=32, key="tr_image_size"
    )
    a, b, c = st.columns(3)
    head_epochs = _number(a, "head_epochs", 0, 1000)
    fine_tune_epochs = _number(b, "fine_tune_epochs", 0, 1000)
    augment = c.selectbox(
        t("train.augment"),
        AUGMENT_PRESETS,
        index=AUGMENT_PRESETS.index(DEFAULTS["augment"]),
        format_func=lambda p: t(f"train.augment_{p}"),
        key="tr_augment",
    )
    with st.expander(t("train.advanced"), icon="⚙️"):
        a, b, c = st.columns(3)
        batch_size = _number(a, "batch_size", 1, 4096)
        lr = _number(b, "lr", 1e-8, 10.0, format="%.1e", step=1e-4)
        fine_tune_lr = _number(c, "fine_tune_lr", 1e-8, 10.0, format="%.1e", step=1e-5)
        unfreeze = a.text_input(t("train.unfreeze"), DEFAULTS["unfreeze"], key="tr_unfreeze")
        label_smoothing = _number(b, "label_smoothing", 0.0, 0.5, step=0.05)
        dropout = _number(c, "dropout", 0.0, 0.9, step=0.05)
        early_stopping = _number(a, "early_stopping", 0, 1000)
        seed = _number(b, "seed", 0, 2**31 - 1)
        class_weights = c.toggle(t("train.class_weights"), DEFAULTS["class_weights"] == "auto", key="tr_cw")
        feature_cache = c.toggle(t("train.feature_cache"), DEFAULTS["feature_cache"], key="tr_feature_cache")
    try:
        return TrainConfig(
            dataset=dataset,
            backbone=backbone,
            weights=path.strip() if choice == "file" else choice,
            image_size=int(size),
            batch_size=int(batch_size),
            head_epochs=int(head_epochs),
            fine_tune_epochs=int(fine_tune_epochs),
            unfreeze=unfreeze.strip(),
            lr=lr,
            fine_tune_lr=fine_tune_lr,
            label_smoothing=label_smoothing,
            dropout=dropout,
            class_weights="auto" if class_weights else "off",
            augment=augment,
            feature_cache=feature_cache,
            early_stopping=int(early_stopping),
            seed=int(seed),
        )
    except LabelTuneError as exc:
        show_error(exc)
        return None


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def run_table(history: list[runs.Run]) -> None:
    rows = [
        {
            t("train.col_run"): r.id,
            t("train.col_status"): t(f"status.{r.status}"),
            t("train.col_backbone"): r.config.get("backbone"),
            t("train.col_weights"): r.weights_used or "–",
            t("train.col_epochs"): r.epochs_run,
            t("train.col_best_val"): pct(r.best.get("val_accuracy")),
            t("train.col_test"): pct(r.final.get("test_accuracy")),
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
        height=340,
        margin={"l": 0, "r": 0, "t": 40, "b": 0},
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.15},
    )
    st.plotly_chart(fig, key="curves")


def eta_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"
