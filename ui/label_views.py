"""The Label page's gallery: filters, one page of thumbnails with selection, actions on a selection or on
everything the filter matches, one image opened large, and undo of the last label changes."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.audit import store as audit_store
from core.datasets import editing
from core.datasets.gallery import (
    FLAGS,
    PAGE_SIZE,
    UNLABELED_FILTER,
    GalleryFilter,
    attribute_values,
    gallery_page,
    label_history,
    labels_of,
    matching_ids,
)
from core.errors import LabelTuneError
from core.store.vocabulary import SPLITS, ImageStatus
from ui.common import cell, md_text, show_error, t, workspace

COLUMNS = 6
UNDO_KEY = "label_undo"
UNDO_DEPTH = 50  # label changes kept for undo in this browser session


def push_undo(kind: str, data: Any) -> None:
    """Remember a change for Undo: ``labels`` (each image's label before), ``excluded`` (images just
    excluded) or ``kept`` (audit findings just kept as they are)."""
    stack = st.session_state.setdefault(UNDO_KEY, [])
    stack.append((kind, data))
    del stack[:-UNDO_DEPTH]


def relabel_with_undo(dataset: str, ids: list[int], label: str | None) -> None:
    """Relabel through core, remembering the previous labels so the change can be undone."""
    before = labels_of(workspace(), ids)
    editing.relabel(workspace(), dataset, ids, label)
    push_undo("labels", before)


def exclude_with_undo(dataset: str, ids: list[int]) -> None:
    editing.set_excluded(workspace(), dataset, ids, True)
    push_undo("excluded", ids)


def undo(dataset: str) -> int:
    """Take back the last change; returns how many images or findings it touched (0: nothing to undo)."""
    stack = st.session_state.get(UNDO_KEY, [])
    if not stack:
        return 0
    kind, data = stack.pop()
    if kind == "excluded":
        editing.set_excluded(workspace(), dataset, data, False)
    elif kind == "kept":
        audit_store.keep(workspace(), dataset, data, kept=False)
    else:
        by_label: dict[str | None, list[int]] = {}
        for image_id, label in data.items():
            by_label.setdefault(label, []).append(image_id)
        for label, ids in by_label.items():
            editing.relabel(workspace(), dataset, ids, label)
    return len(data)


def filter_ui(classes: list[str], dataset: str) -> GalleryFilter:
    """The gallery's filters. "All" is the option ``ALL``, not None: the language switch sets every widget's
    value again (``ui.common.save_language``), and Streamlit shows a selectbox set to None as empty."""
    a, b, c, d = st.columns(4)
    label = a.selectbox(t("label.filter_class"), [ALL, UNLABELED_FILTER, *classes], format_func=_class, key="f_class")
    split = b.selectbox(t("label.filter_split"), [ALL, *SPLITS], format_func=_split, key="f_split")
    status = c.selectbox(
        t("label.filter_status"), [*ImageStatus, ALL], format_func=lambda s: t(f"label.status_{s or 'all'}"), key="f_status"
    )  # fmt: skip
    search = d.text_input(t("label.search"), key="f_search")
    left, right = st.columns(2)
    flag = left.selectbox(t("label.filter_flag"), [ALL, *FLAGS], format_func=_flag, key="f_flag")
    pairs = [ALL, *((k, v) for k, values in attribute_values(workspace(), dataset).items() for v in values)]
    attribute = ALL
    if len(pairs) > 1:
        attribute = right.selectbox(
            t("label.filter_attribute"), pairs, format_func=lambda p: t("label.all") if p == ALL else f"{p[0]} = {p[1]}",
            key="f_attr",
        )  # fmt: skip
    return GalleryFilter(*(None if v == ALL else v for v in (label, split, status)), search,
                         None if attribute == ALL else attribute, None if flag == ALL else flag)  # fmt: skip


ALL = ""  # the "(all)" option of a filter: no class, split or flag is named ""


def _class(value: str) -> str:
    return t("label.all") if value == ALL else t("label.unlabeled") if value == UNLABELED_FILTER else value


def _split(value: str) -> str:
    return t("label.all") if value == ALL else t(f"split.{value}")


def _flag(value: str) -> str:
    return t("label.all") if value == ALL else t(f"label.flag_{value}")


def gallery_ui(dataset: str, f: GalleryFilter) -> list[int]:
    """One page of thumbnails, each with a checkbox; returns the ids selected on this page."""
    page = int(st.session_state.get("page", 1))
    images, total = gallery_page(workspace(), dataset, f, page - 1, PAGE_SIZE)  # one query: the page and the count
    pages = max(1, -(-total // PAGE_SIZE))
    if page > pages:  # the filter now matches fewer images: show its last page
        page = st.session_state["page"] = pages
        images, total = gallery_page(workspace(), dataset, f, page - 1, PAGE_SIZE)
    st.number_input(t("label.page", pages=pages, total=total), 1, pages, key="page")
    columns = st.columns(COLUMNS)
    selected = []
    for i, image in enumerate(images):
        column = columns[i % COLUMNS]
        column.image(cell(str(image.thumb)), caption=_caption(image))
        if column.checkbox(t("label.select"), key=f"sel_{image.id}", label_visibility="collapsed"):
            selected.append(image.id)
    st.session_state["page_images"] = {image.id: image for image in images}
    return selected


def _caption(image: Any) -> str:
    label = md_text(image.label) if image.label else t("label.unlabeled")  # a class name: shown as typed
    text = f"{label} · {t(f'split.{image.split}') if image.split else '–'}"
    return f"~~{text}~~" if image.excluded else text


def actions_ui(dataset: str, classes: list[str], selected: list[int], f: GalleryFilter) -> None:
    """Move, exclude, restore or re-split the selection, or everything the filter matches."""
    scope = st.radio(
        t("label.scope"), ["selected", "matching"], horizontal=True, key="scope",
        format_func=lambda s: t(f"label.scope_{s}", count=len(selected)),
    )  # fmt: skip
    ids = selected if scope == "selected" else matching_ids(workspace(), dataset, f)
    a, b, c = st.columns([2, 1, 1])
    target = a.selectbox(
        t("label.move_to"), [*classes, None], format_func=lambda c: c or t("label.unlabeled"), key="target"
    )
    new = a.text_input(t("label.new_class"), key="new_target")
    try:
        if b.button(t("label.move"), type="primary", disabled=not ids, key="move"):
            relabel_with_undo(dataset, ids, new.strip() or target)
            st.rerun()
        if b.button(t("label.exclude"), disabled=not ids, key="exclude"):
            editing.set_excluded(workspace(), dataset, ids, True)
            st.rerun()
        if b.button(t("label.restore"), disabled=not ids, key="restore"):
            editing.set_excluded(workspace(), dataset, ids, False)
            st.rerun()
        if b.button(t("label.as_examples"), disabled=not selected or target is None, key="as_examples"):
            editing.set_examples(workspace(), dataset, target, selected)
            st.toast(t("label.examples_set", count=len(selected), name=target))
        split = c.selectbox(t("label.filter_split"), SPLITS, format_func=lambda s: t(f"split.{s}"), key="new_split")
        if c.button(t("label.set_split"), disabled=not ids, key="set_split"):
            editing.set_split(workspace(), dataset, ids, split)
            st.rerun()
    except LabelTuneError as exc:
        show_error(exc)


def open_image_ui(dataset: str, descriptions: dict[str, str]) -> None:
    images = st.session_state.get("page_images", {})
    if not images:
        return
    chosen = st.selectbox(
        t("label.open"), [ALL, *images], format_func=lambda i: images[i].name if i else "–", key="open"
    )
    if chosen == ALL:
        return
    image = images[chosen]
    left, right = st.columns([2, 1])
    left.image(str(image.path), caption=md_text(image.name))
    right.markdown(
        t(
            "label.details",
            label=md_text(image.label) if image.label else t("label.unlabeled"),
            split=image.split or "–",
            w=image.width,
            h=image.height,
        )
    )
    if image.label and descriptions.get(image.label):
        right.caption(md_text(descriptions[image.label]))
    if image.attributes:
        right.json(image.attributes)
    history = label_history(workspace(), dataset, image.id)
    right.caption(t("label.history", count=len(history)))
    for entry in history[:10]:
        right.caption(
            f"v{entry['version']} · {md_text(entry['label']) if entry['label'] else t('label.unlabeled')} · {entry['at'][:16]}"
        )
