"""The Label page's export: the dataset as a zip that the import accepts again, built by a job
(``core.datasets.jobs.EXPORT_DATASET``), then offered for download."""

from __future__ import annotations

import streamlit as st

from core.datasets.jobs import EXPORT_DATASET, dataset_export_path, start_dataset_export
from core.errors import LabelTuneError
from core.jobs.store import JobStatus, find_live, list_jobs
from ui.common import show_error, t, workspace
from ui.jobs import ended_ui, job_ui


def export_ui(dataset: str) -> None:
    ws = workspace()
    st.caption(t("label.export_help"))
    live = find_live(ws, EXPORT_DATASET.name, dataset)
    if live is not None:
        st.caption(t("label.export_building"))
        job_ui(live.id, "export")
        return
    last = next((j for j in list_jobs(ws, kinds=(EXPORT_DATASET.name,)) if j.params.get("dataset") == dataset), None)
    if last is not None:
        ended_ui(last)
    if st.button(t("label.export"), key="export", icon="📦"):
        try:
            job_ui(start_dataset_export(ws, dataset), "export")
        except LabelTuneError as exc:
            show_error(exc)
        return
    built = dataset_export_path(ws, dataset)
    if last is not None and last.status is JobStatus.COMPLETED and built.exists():
        st.download_button(t("label.download"), built.read_bytes(), f"{dataset}.zip", "application/zip", key="download")
