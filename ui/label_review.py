"""Reviewing duplicates and label conflicts side by side: keep one label for a group, or keep one copy."""

from __future__ import annotations

import streamlit as st

from core.datasets import editing
from core.datasets.gallery import duplicate_groups
from core.errors import LabelTuneError
from ui.common import cell, md_text, show_error, t, workspace
from ui.label_views import relabel_with_undo

GROUPS_SHOWN = 10


def review_ui(dataset: str, classes: list[str]) -> None:
    groups = duplicate_groups(workspace(), dataset)
    conflicts = sum(g.conflict for g in groups)
    st.caption(t("label.review_counts", groups=len(groups), conflicts=conflicts))
    for n, group in enumerate(groups[:GROUPS_SHOWN]):
        st.divider()
        columns = st.columns(max(len(group.images), 2) + 1)
        for column, image in zip(columns, group.images, strict=False):
            column.image(
                cell(str(image.thumb)),
                caption=f"{md_text(image.label or t('label.unlabeled'))} · {md_text(image.name)}",
            )
        with columns[-1]:
            ids = [image.id for image in group.images]
            keep = st.selectbox(t("label.keep_label"), classes, key=f"keep_{n}")
            try:
                if st.button(t("label.keep"), key=f"keep_btn_{n}", type="primary" if group.conflict else "secondary"):
                    relabel_with_undo(dataset, ids, keep)
                    st.rerun()
                if st.button(t("label.keep_one"), key=f"keep_one_{n}"):
                    editing.set_excluded(workspace(), dataset, ids[1:], True)
                    st.rerun()
            except LabelTuneError as exc:
                show_error(exc)
