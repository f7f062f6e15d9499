"""Before Start: presets that fill the form, backbone advice, the time estimate, the augmentation
preview and the learning-rate finder. The last three need TensorFlow: each button queues a light job
(``core.training.jobs``) and returns; the job's progress shows until it ends, and its result, cached in
the workspace, shows from then on (also after leaving the page and coming back)."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from core.errors import LabelTuneError
from core.jobs.runner import JobKind
from core.jobs.store import find_live, list_jobs
from core.runs.config import TrainConfig
from core.training import estimate, lr_sweeps, preview
from core.training.advice import advise_dataset
from core.training.jobs import ESTIMATE, LR_FIND, PREVIEW, plan_key, start_plan_job
from core.training.pipeline import TrainingData, load_training_data
from core.training.presets import DEFAULT_PRESET, PRESETS, matching_preset, preset_values
from ui.common import show_error, t, workspace
from ui.jobs import ended_ui, job_ui
from ui.train_form import WEIGHT_CHOICES
from ui.train_views import eta_text

PRESET_KEY = "tr_preset"
ADVISED_KEY = "tr_advised"  # the advice's values for the dataset shown, for the callbacks below
SHOWN_PRESET_KEY = "tr_preset_shown"  # the preset the page last drew as chosen
ICONS = {"estimate": "⏱️", "preview": "🎨", "lr_find": "📉"}


def _apply_preset() -> None:
    """Fill every form widget from the chosen preset (a callback: runs before the widgets are drawn), when
    the choice changed. Streamlit also calls it when a rerun interrupted the run before the control was
    drawn and the browser sends the same choice again (seen in Chromium under load, for the language
    switch): filling the form then would undo the user's edits."""
    chosen = st.session_state[PRESET_KEY]
    if chosen is None or chosen == st.session_state.get(SHOWN_PRESET_KEY):
        return
    _fill(preset_values(chosen, st.session_state.get(ADVISED_KEY)))


def _fill(values: dict[str, object], only_unset: bool = False) -> None:
    for name, value in values.items():
        key = f"tr_{name}"
        if name == "weights":
            value = value if value in WEIGHT_CHOICES else "file"
        if only_unset:
            st.session_state.setdefault(key, value)
        else:
            st.session_state[key] = value


def _apply_advice() -> None:
    _fill(st.session_state[ADVISED_KEY])


def preset_ui() -> None:
    st.session_state.setdefault(PRESET_KEY, DEFAULT_PRESET)
    st.session_state[SHOWN_PRESET_KEY] = st.segmented_control(
        t("train.preset"), list(PRESETS), format_func=lambda p: t(f"preset.{p}"), key=PRESET_KEY,
        on_change=_apply_preset, help=t("train.preset_help"), required=True,
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
    """The advice for this dataset on this machine; the form starts from it (before any widget of the form
    is drawn), and "Apply this advice" sets it again after edits."""
    advice = advise_dataset(workspace(), dataset, data)
    st.session_state[ADVISED_KEY] = advised = advice.values()
    _fill(advised, only_unset=True)
    text = t(advice.key, **advice.params)
    if advice.params["median"] and advice.params["median"] < 160:
        text += " " + t("advice.small_images", median=advice.params["median"])
    st.info(text, icon="💡")
    if all(st.session_state.get(f"tr_{k}") == v for k, v in advised.items()):
        st.caption(t("advice.applied"))
    else:
        st.button(t("advice.apply"), key="apply_advice", on_click=_apply_advice, help=t("advice.apply_help"))


def custom_note(config: TrainConfig) -> None:
    """Say so when the form no longer matches the chosen preset."""
    values = {k: v for k, v in config.to_dict().items() if k != "dataset"}
    if matching_preset(values, st.session_state.get(ADVISED_KEY)) is None:
        st.caption(t("train.preset_custom"))


def _plan_job_ui(
    kind: JobKind, config: TrainConfig, data: TrainingData, button: str, key: str, help_key: str = "", **options: object
) -> None:
    """The job that makes this config's result: live (its progress and Cancel), else the button that queues
    it, and how the last one ended when it did not complete."""
    ws = workspace()
    dedupe = plan_key(kind, ws, config, data)
    live = find_live(ws, kind.name, dedupe)
    if live is not None:
        job_ui(live.id, key)
        return
    last = next(iter(list_jobs(ws, kinds=(kind.name,), limit=1)), None)
    if last is not None and last.dedupe == dedupe:
        ended_ui(last)
    if st.button(t(button), key=key, icon=ICONS[key], help=t(help_key) if help_key else None):
        try:
            job_ui(start_plan_job(ws, kind, config, data, **options), key)
        except LabelTuneError as exc:
            show_error(exc)


def estimate_ui(config: TrainConfig, data: TrainingData) -> None:
    found = estimate.cached_estimate(workspace(), config, data.counts())
    if found is None:
        st.caption(t("train.estimate_none"))
        _plan_job_ui(ESTIMATE, config, data, "train.estimate_measure", "estimate")
        return
    parts = " · ".join(f"{t(f'train.part_{k}')} {eta_text(v)}" for k, v in found.parts.items() if v)
    st.markdown(t("train.estimate", time=eta_text(found.total_s)) + f"  \n:grey[{parts}]")
    if found.contended:
        st.caption(t("train.estimate_contended"))
        _plan_job_ui(ESTIMATE, config, data, "train.estimate_again", "estimate", remeasure=True)


def preview_ui(config: TrainConfig, data: TrainingData) -> None:
    path = preview.preview_path(workspace(), config, data)
    if path.exists():
        st.image(str(path), caption=t("train.preview_caption", augment=t(f"choice.augment_{config.augment}")))
    else:
        _plan_job_ui(PREVIEW, config, data, "train.preview_make", "preview")


def _use_rate(rate: float) -> None:
    st.session_state["tr_lr"] = float(f"{rate:.1e}")


def lr_finder_ui(config: TrainConfig, data: TrainingData) -> None:
    sweep = lr_sweeps.cached_sweep(workspace(), config, data)
    if sweep is None:
        _plan_job_ui(LR_FIND, config, data, "train.lr_find", "lr_find", help_key="train.lr_find_help")
        return
    fig = go.Figure(go.Scatter(x=sweep.rates, y=sweep.losses, mode="lines", name=t("train.curve_loss")))
    fig.add_vline(x=sweep.suggestion, line_dash="dash", line_color="#2f6fdf")
    fig.update_xaxes(type="log", title_text=t("train.lr_axis"))
    fig.update_yaxes(title_text=t("train.curve_loss"))
    fig.update_layout(height=260, margin={"l": 0, "r": 0, "t": 10, "b": 0})
    st.plotly_chart(fig, key="lr_curve")
    rate = f"{sweep.suggestion:.1e}"
    st.button(t("train.lr_use", lr=rate), key="lr_use", on_click=_use_rate, args=(sweep.suggestion,))
