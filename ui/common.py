"""Workspace, language and error display for every page."""

from __future__ import annotations

import argparse
import html
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image, ImageOps
from streamlit.errors import StreamlitAPIException

from core.datasets.catalog import dataset_names
from core.errors import LabelTuneError
from core.i18n import DEFAULT_LANGUAGE, LANGUAGES, tr
from core.runs.integrity import check
from core.store.workspace import Workspace, resolve_database, resolve_root

LANG_KEY = "lang"
LANG_CHOICE_KEY = "lang_choice"
LANG_SETTING = "ui.language"


def workspace_args(argv: list[str] | None = None) -> tuple[Path, str | None]:
    """The workspace folder and database from ``streamlit run streamlit_app.py -- --workspace PATH
    --database URL`` (each else its environment variable: ``core.store.workspace``)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--workspace")
    parser.add_argument("--database")
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return resolve_root(known.workspace), resolve_database(known.database)


@st.cache_resource(show_spinner=False)
def _open_workspace(root: Path, database: str | None) -> Workspace:
    return Workspace.open(root, database)


def workspace() -> Workspace:
    """The workspace, opened (folders, migrations) once per process, folder and database."""
    return _open_workspace(*workspace_args())


@st.cache_resource(show_spinner=False)
def _problems_at_start(root: Path, database: str | None) -> list[dict[str, Any]]:
    return check(Workspace(root, database))


def workspace_problems() -> list[dict[str, Any]]:
    """What the workspace's integrity check found when this server process first opened it (stored
    messages); it repairs nothing."""
    ws = workspace()
    return _problems_at_start(ws.root, ws.database)


def lang() -> str:
    """The UI language: the sidebar choice, else the saved one, else the browser's."""
    if LANG_KEY not in st.session_state:
        try:
            saved = workspace().get_setting(LANG_SETTING)
        except LabelTuneError:  # a locked or damaged store: the entry point says so, in the browser's language
            saved = None
        if saved not in LANGUAGES:
            locale = (getattr(st.context, "locale", None) or "").lower()
            saved = "zh" if locale.startswith("zh") else DEFAULT_LANGUAGE
        st.session_state[LANG_KEY] = saved
    return st.session_state[LANG_KEY]


# Characters Markdown (and Streamlit's :color[...] directives and $math$) give a meaning to.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$])")


def md_text(text: str) -> str:
    """``text`` from a user or an archive (a class name, a run's title), escaped to show as typed inside
    Markdown: ``**x**`` or ``:red[x]`` stays literal."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def plot_text(text: str) -> str:
    """``text`` from a user or an archive for a Plotly figure (axis categories, legend names, hover text,
    titles), escaped so that Plotly's HTML subset (``<b>``, ``<a href>``, ``<br>``) shows as typed."""
    return html.escape(str(text), quote=False)


CELL = 160  # side of a gallery cell, pixels (thumbnails are stored at most 256 on their longer side)


@st.cache_data(max_entries=4000, show_spinner=False)
def cell(path: str, side: int = CELL) -> Any:
    """A stored thumbnail letterboxed into a square cell, so a gallery's rows align and its captions sit
    under their images whatever the photos' shapes (a portrait and a panorama take the same cell)."""

    with Image.open(path) as image:
        return np.asarray(ImageOps.pad(image.convert("RGB"), (side, side), color=(240, 242, 246)))


def t(key: str, **params: Any) -> str:
    return tr(key, lang(), **params)


def _relabels(value: Any) -> bool:
    """Whether a widget's value is one the language switch sets again: a choice or a typed value (text, a
    number, an option, a list of options). Not a button's or a checkbox's bool, an empty choice's None
    (nothing to relabel; set again, each stops the page: "st.session_state['sample'] is read-only"), nor
    an upload, a component's or a data editor's value (Streamlit takes the assignment, then refuses the
    widget when it is drawn: "st.session_state['upload'] is read-only")."""
    if isinstance(value, (list, tuple)):
        return bool(value) and all(_relabels(item) for item in value)
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def save_language() -> None:
    """The language switch's callback. Streamlit's browser side keeps showing a keyed widget's value as it
    was labelled (a filter read "(all)" and "in use" in Chinese): each widget's value that carries a label
    is set again (:func:`_relabels`), so the next run sends it with its label in the new language.
    Streamlit may call it when the language did not change (seen in Chromium under load: a rerun that
    interrupted another); then it does nothing."""
    chosen = st.session_state[LANG_CHOICE_KEY]
    if chosen == st.session_state.get(LANG_KEY):
        return
    st.session_state[LANG_KEY] = chosen
    workspace().set_setting(LANG_SETTING, chosen)
    for key in list(st.session_state):
        if key == LANG_CHOICE_KEY or not _relabels(st.session_state[key]):
            continue
        try:
            st.session_state[key] = st.session_state[key]
        except StreamlitAPIException:
            continue  # a widget Streamlit will not let a callback set: no value to relabel


def language_ui() -> str:
    """The sidebar's language switch. The language itself lives in ``LANG_KEY``, not in the widget's
    state: a browser rerun that re-creates the widget (after ``st.rerun`` in a page) would otherwise
    reset it to its first option, Chinese, as seen in Chromium after an import."""
    current = lang()
    options = list(LANGUAGES)
    return st.sidebar.radio(
        tr("app.language", current),
        options=options,
        index=options.index(current),
        format_func=LANGUAGES.__getitem__,
        horizontal=True,
        key=LANG_CHOICE_KEY,
        on_change=save_language,
    )


def md_message(message: dict[str, Any] | str | None) -> str:
    """A stored message (a run's error, an import warning, a job's phase) for a Markdown element, in the
    reader's language, its parameters (file, class and dataset names) shown as typed. A parameter the
    message puts in a code span (a path, a command) is left alone: Markdown shows code as typed."""
    if not message:
        return ""
    if isinstance(message, str):  # plain text, stored before messages were keys
        return md_text(message)
    key, params = message["key"], message.get("params", {})
    in_code = set(re.findall(r"\{(\w+)[^}]*\}", " ".join(re.findall(r"`[^`]*`", tr(key, lang())))))
    escaped = {k: md_text(v) if isinstance(v, str) and k not in in_code else v for k, v in params.items()}
    return tr(key, lang(), **escaped)


def show_error(exc: LabelTuneError) -> None:
    st.error(md_message(exc.stored()), icon="⚠️")


def dataset_picker_ui(key: str) -> str:
    """The dataset this page works on (the one chosen on the Dataset page first); without any dataset,
    says where to make one and stops the page."""

    names = dataset_names(workspace())
    if not names:
        st.info(t("train.no_dataset"))
        st.page_link("pages/dataset.py", label=t("nav.dataset"), icon="🗂️")
        st.stop()
    if st.session_state.get(key) not in names:
        chosen = st.session_state.get("dataset")
        st.session_state[key] = chosen if chosen in names else names[0]
    return st.selectbox(t("train.dataset"), names, key=key)
