"""Renaming and deleting a dataset (the Dataset page's "manage" section)."""

from __future__ import annotations

import streamlit as st

from core.datasets import editing
from core.datasets.ingest import add_archive
from core.errors import LabelTuneError
from ui.common import show_error, t, workspace


def add_images_ui(dataset: str) -> None:
    """Another zip into this dataset: new classes appear, duplicates are reported, nothing moves."""
    with st.expander(t("dataset.add_header"), icon="➕"):
        upload = st.file_uploader(t("dataset.upload"), type=["zip"], help=t("dataset.add_help"), key="add_upload")
        if st.button(t("dataset.add_button"), disabled=upload is None, key="add_images"):
            try:
                result = add_archive(workspace(), upload, dataset, archive_name=upload.name)
            except LabelTuneError as exc:
                show_error(exc)
            else:
                st.session_state["imported"] = t(
                    "dataset.added", images=result.images, name=dataset, skipped=len(result.skipped)
                )
                st.rerun()


def manage_ui(dataset: str) -> None:
    with st.expander(t("dataset.manage"), icon="🛠️"):
        left, right = st.columns(2)
        new = left.text_input(t("dataset.rename_to"), key="rename_dataset_to")
        try:
            if left.button(t("label.rename"), disabled=not new.strip(), key="rename_dataset"):
                editing.rename_dataset(workspace(), dataset, new)
                st.session_state["select_dataset"] = new.strip()  # applied before the selectbox, next run
                st.rerun()
            typed = right.text_input(t("dataset.delete_type", name=dataset), key="delete_dataset_name")
            with_runs = right.toggle(t("dataset.delete_runs"), key="delete_dataset_runs")
            if right.button(t("label.delete"), disabled=typed != dataset, key="delete_dataset"):
                removed = editing.delete_dataset(workspace(), dataset, with_runs)
                st.session_state.pop("dataset", None)
                st.session_state["imported"] = t("dataset.deleted", name=dataset, **removed)
                st.rerun()
        except LabelTuneError as exc:
            show_error(exc)
