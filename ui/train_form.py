"""The Train page's new-run form: one widget per ``TrainConfig`` field, from its metadata, and the fields
that are a choice or a path (the backbone, the weights, the teacher)."""

from __future__ import annotations

from dataclasses import Field
from typing import Any

import streamlit as st

from core.errors import LabelTuneError
from core.i18n import has_message
from core.runs import store as runs
from core.runs.backbones import BACKBONES, DEFAULT_BACKBONE
from core.runs.config import TrainConfig
from core.store.server_paths import inside_roots
from ui.common import show_error, t, workspace

WEIGHT_CHOICES = ("imagenet", "none", "file")
OTHER = ""  # the backbone choice "a preset folder or handle": typed in a field of its own


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


def backbone_ui(key: str = "tr_backbone") -> str:
    """A backbone of the table, or (the last choice) a KerasHub preset folder on this machine or a hub
    handle, typed; its description under it."""
    st.session_state.setdefault(key, DEFAULT_BACKBONE)
    options = [*BACKBONES, OTHER]
    choice = st.selectbox(
        t("setting.backbone"), options, key=key, help=t("help.backbone"),
        format_func=lambda n: t("train.backbone_other") if n == OTHER else f"{BACKBONES[n].friendly} · {n}",
    )  # fmt: skip
    if choice != OTHER:
        st.caption(t(BACKBONES[choice].description))
        return choice
    return st.text_input(t("train.backbone_path"), key=f"{key}_path", help=t("train.backbone_path_help")).strip()


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
    by_name.pop("backbone")
    backbone = backbone_ui()
    values: dict[str, Any] = {"dataset": dataset, "backbone": backbone}
    left, right = st.columns(2)
    by_name.pop("weights")
    values["weights"] = _weights_ui(left)
    own = BACKBONES[backbone].default_size if backbone in BACKBONES else "?"
    values["image_size"] = setting_widget(right, by_name.pop("image_size"), size=own)
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
        # a path typed in the browser (a weights file, a preset folder): only inside the server's roots
        if values["weights"] not in WEIGHT_CHOICES and values["weights"]:
            values["weights"] = str(inside_roots(workspace(), values["weights"]))
        if backbone not in BACKBONES and backbone and "://" not in backbone:
            values["backbone"] = str(inside_roots(workspace(), backbone))
        config = TrainConfig(**values)
        config.check_files()
        return config
    except LabelTuneError as exc:
        show_error(exc)
        return None
