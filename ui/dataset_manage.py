"""The Dataset page's imports (a new dataset, or more images into one) as jobs, and its "manage" section
(rename, delete)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from core.datasets import editing
from core.datasets.jobs import IMPORT, start_import, start_import_staged, start_server_import
from core.datasets.splits import SplitConfig
from core.errors import LabelTuneError
from core.jobs.store import JobStatus, get_job, list_jobs
from core.store.server_paths import ENV_VAR as SERVER_ROOTS_ENV
from core.store.server_paths import server_roots
from ui.common import md_text, show_error, t, workspace
from ui.jobs import ended_ui, job_ui
from ui.uploader import hand_over, job_uploader, streaming_uploader, take

STARTED_KEY = "import_jobs"  # the import jobs this session started, to say how each ended


def import_ui(first_time: bool) -> None:
    """The upload form (open when the workspace is empty): Import queues an import job and returns."""
    with st.expander(t("dataset.import_header"), expanded=first_time, icon="📦"):
        st.caption(t("dataset.stream_upload"))
        streamed = streaming_uploader("stream_upload")
        st.caption(t("dataset.small_upload"))
        upload = job_uploader(t("dataset.upload"), "upload", type=["zip"], help=t("dataset.upload_help"))
        chosen = upload.name if upload else streamed["name"] if streamed else ""
        name = st.text_input(t("dataset.name"), placeholder=Path(chosen).stem if chosen else "", key="new_name")
        st.caption(t("dataset.split_header"))
        left, middle, right = st.columns(3)
        val_pct = left.number_input(t("dataset.val_pct"), 0, 50, 15, key="val_pct")
        test_pct = middle.number_input(t("dataset.test_pct"), 0, 50, 15, key="test_pct")
        seed = right.number_input(t("dataset.seed"), 0, 2**31 - 1, SplitConfig.seed, key="split_seed")
        if st.button(t("dataset.import_button"), type="primary", disabled=upload is None, key="import"):
            try:
                split = SplitConfig.held_out(val_pct / 100, test_pct / 100, int(seed))
                _started(start_import(workspace(), upload, upload.name, name=name.strip() or None, split=split))
                del st.session_state["new_name"]  # the next zip gets its own name
                hand_over(upload, "upload")
            except LabelTuneError as exc:
                show_error(exc)
        if streamed is not None and st.button(t("dataset.stream_import"), type="primary", key="stream_import"):
            try:
                split = SplitConfig.held_out(val_pct / 100, test_pct / 100, int(seed))
                path, archive_name = take(streamed, "stream_upload")
                _started(start_import_staged(workspace(), path, archive_name, name=name.strip() or None, split=split))
                del st.session_state["new_name"]
                st.rerun()
            except LabelTuneError as exc:
                show_error(exc)
        server_import_ui(lambda: {"name": name.strip() or None,
                                  "split": SplitConfig.held_out(val_pct / 100, test_pct / 100, int(seed))})  # fmt: skip


def server_import_ui(options: Callable[[], dict[str, Any]], key: str = "server_path") -> None:
    """A zip or a folder already on the server, by its path: only inside the administrator's roots."""
    roots = server_roots(workspace())
    if not roots:
        st.caption(t("dataset.server_off", env=SERVER_ROOTS_ENV))
        return
    st.caption(t("dataset.server_roots", roots=", ".join(md_text(str(r)) for r in roots)))
    left, right = st.columns([3, 1])
    typed = left.text_input(t("dataset.server_path"), key=key, placeholder=str(roots[0]))
    if right.button(t("dataset.server_import"), key=f"{key}_import", disabled=not typed.strip()):
        try:
            _started(start_server_import(workspace(), typed.strip(), **options()))
        except LabelTuneError as exc:
            show_error(exc)
        else:
            st.rerun()  # the page runs again and shows the live import


def add_images_ui(dataset: str) -> None:
    """Another zip into this dataset: new classes appear, duplicates are reported, nothing moves."""
    with st.expander(t("dataset.add_header"), icon="➕"):
        st.caption(t("dataset.stream_upload"))
        streamed = streaming_uploader("add_stream")
        if streamed is not None and st.button(t("dataset.stream_add"), type="primary", key="stream_add"):
            try:
                path, archive_name = take(streamed, "add_stream")
                _started(start_import_staged(workspace(), path, archive_name, into=dataset))
                st.rerun()
            except LabelTuneError as exc:
                show_error(exc)
        st.caption(t("dataset.small_upload"))
        upload = job_uploader(t("dataset.upload"), "add_upload", type=["zip"], help=t("dataset.add_help"))
        if st.button(t("dataset.add_button"), disabled=upload is None, key="add_images"):
            _started(start_import(workspace(), upload, upload.name, into=dataset))
            hand_over(upload, "add_upload")
        server_import_ui(lambda: {"into": dataset}, key="add_server_path")


def _started(job_id: int) -> None:
    """Remember the job, to say how it ended; the next run of the page shows it with the other live imports."""
    st.session_state.setdefault(STARTED_KEY, []).append(job_id)


def import_jobs_ui() -> None:
    """Imports running now (whoever started them: another tab, the command line) with their progress and
    Cancel; then, once, how each import this session started ended. A finished import's dataset is
    selected."""
    ws = workspace()
    for job in reversed(list_jobs(ws, kinds=(IMPORT.name,), live_only=True)):
        st.caption(t("dataset.importing_job", archive=job.params.get("archive_name", "")))
        job_ui(job.id, "import")
    for job_id in list(st.session_state.get(STARTED_KEY, [])):
        job = get_job(ws, job_id)
        if job.live:
            continue
        st.session_state[STARTED_KEY].remove(job_id)
        if job.status is JobStatus.COMPLETED:
            result = job.result
            st.session_state["dataset"] = result["dataset"]
            key = "dataset.added" if result.get("added") else "dataset.imported"
            st.success(t(key, images=result["images"], name=md_text(result["dataset"]), seconds=result["seconds"],
                         skipped=len(result["skipped"])))  # fmt: skip
        else:
            ended_ui(job)


def manage_ui(dataset: str) -> None:
    with st.expander(t("dataset.manage"), icon="🛠️"):
        left, right = st.columns(2)
        new = left.text_input(t("dataset.rename_to"), key="rename_dataset_to")
        try:
            if left.button(t("label.rename"), disabled=not new.strip(), key="rename_dataset"):
                editing.rename_dataset(workspace(), dataset, new)
                st.session_state["select_dataset"] = new.strip()  # applied before the selectbox, next run
                st.rerun()
            typed = right.text_input(t("dataset.delete_type", name=md_text(dataset)), key="delete_dataset_name")
            with_runs = right.toggle(t("dataset.delete_runs"), key="delete_dataset_runs")
            if right.button(t("label.delete"), disabled=typed != dataset, key="delete_dataset"):
                removed = editing.delete_dataset(workspace(), dataset, with_runs)
                st.session_state.pop("dataset", None)
                st.session_state["imported"] = t("dataset.deleted", name=md_text(dataset), **removed)
                st.rerun()
        except LabelTuneError as exc:
            show_error(exc)
