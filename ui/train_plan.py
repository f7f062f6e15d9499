"""Before Start: presets that fill the form, backbone advice, the time estimate, the augmentation
preview and the learning-rate finder. The last three need TensorFlow and run as ``python -m core``
verbs in a subprocess (``core.training.side_jobs``); their results are cached in the workspace."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from core.errors import LabelTuneError
from core.training import estimate, lr_sweeps, preview, side_jobs
from core.training.advice import advise_dataset
from core.training.config import TrainConfig
from core.training.pipeline import TrainingData, load_training_data
from core.training.presets import DEFAULT_PRESET, PRESETS, matching_preset, preset_values
from ui.common import show_error, t, workspace
from ui.train_views import WEIGHT_CHOICES, eta_text

PRESET_KEY = "tr_preset"


def _apply_preset() -> None:
    """Fill every form widget from the chosen preset (a callback: runs before the widgets are drawn)."""
    for name, value in preset_values(st.session_state[PRESET_KEY]).items():
        if name == "weights":
            st.session_state["tr_weights"] = value if value in WEIGHT_CHOICES else "file"
        else:
            st.session_state[f"tr_{name}"] = value


def preset_ui() -> None:
    st.session_state.setdefault(PRESET_KEY, DEFAULT_PRESET)
    st.segmented_control(
        t("train.preset"), list(PRESETS), format_func=lambda p: t(f"preset.{p}"), key=PRESET_KEY,
        on_change=_apply_preset, help=t("train.preset_help"),
    )  # fmt: skip
    st.caption(t(f"preset.{st.session_state[PRESET_KEY] or DEFAULT_PRESET}_when"))


def training_data(dataset: str) -> TrainingData | None:
    """The dataset's training data, loaded once for the page's advice, estimate, preview and LR finder;
    None when it cannot train (the form's Start says why)."""
    try:
        return load_training_data(workspace(), dataset)
    except LabelTuneError:
        return None


def advice_ui(dataset: str, data: TrainingData) -> None:
    advice = advise_dataset(workspace(), dataset, data)
    text = t(advice.key, **advice.params)
    if advice.params["median"] and advice.params["median"] < 160:
        text += " " + t("advice.small_images", median=advice.params["median"])
    st.info(text, icon="💡")


def custom_note(config: TrainConfig) -> None:
    """Say so when the form no longer matches the chosen preset."""
    values = {k: v for k, v in config.to_dict().items() if k != "dataset"}
    if matching_preset(values) is None:
        st.caption(t("train.preset_custom"))


def _side_job(verb: str, config: TrainConfig, waiting: str) -> dict | None:
    """Run ``python -m core VERB`` for ``config`` in a subprocess under a spinner; None (the reason
    shown) when it failed."""
    with st.spinner(t(waiting)):
        try:
            return side_jobs.run_verb(workspace(), verb, side_jobs.config_args(config))
        except LabelTuneError as exc:
            show_error(exc)
            return None


def estimate_ui(config: TrainConfig, data: TrainingData) -> None:
    ws, counts = workspace(), data.counts()
    found = estimate.cached_estimate(ws, config, counts)
    if found is None:
        st.caption(t("train.estimate_none"))
        if st.button(t("train.estimate_measure"), key="estimate", icon="⏱️"):
            _side_job("estimate", config, "train.estimate_measuring")
            found = estimate.cached_estimate(ws, config, counts)
    if found is not None:
        parts = " · ".join(f"{t(f'train.part_{k}')} {eta_text(v)}" for k, v in found.parts.items() if v)
        st.markdown(t("train.estimate", time=eta_text(found.total_s)) + f"  \n:grey[{parts}]")


def preview_ui(config: TrainConfig, data: TrainingData) -> None:
    path = preview.preview_path(workspace(), config, data)
    if not path.exists() and st.button(t("train.preview_make"), key="preview", icon="🎨"):
        _side_job("augment-preview", config, "train.preview_making")
    if path.exists():
        st.image(str(path), caption=t("train.preview_caption", augment=t(f"choice.augment_{config.augment}")))


def _use_rate(rate: float) -> None:
    st.session_state["tr_lr"] = float(f"{rate:.1e}")


def lr_finder_ui(config: TrainConfig, data: TrainingData) -> None:
    ws = workspace()
    sweep = lr_sweeps.cached_sweep(ws, config, data)
    if sweep is None and st.button(t("train.lr_find"), key="lr_find", icon="📉", help=t("train.lr_find_help")):
        _side_job("lr-find", config, "train.lr_finding")
        sweep = lr_sweeps.cached_sweep(ws, config, data)
    if sweep is None:
        return
    fig = go.Figure(go.Scatter(x=sweep.rates, y=sweep.losses, mode="lines", name=t("train.curve_loss")))
    fig.add_vline(x=sweep.suggestion, line_dash="dash", line_color="#2f6fdf")
    fig.update_xaxes(type="log", title_text=t("train.lr_axis"))
    fig.update_yaxes(title_text=t("train.curve_loss"))
    fig.update_layout(height=260, margin={"l": 0, "r": 0, "t": 10, "b": 0})
    st.plotly_chart(fig, key="lr_curve")
    rate = f"{sweep.suggestion:.1e}"
    st.button(t("train.lr_use", lr=rate), key="lr_use", on_click=_use_rate, args=(sweep.suggestion,))
