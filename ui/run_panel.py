"""One run, live: status, progress, curves, stop and resume.

While the run is queued or running the panel is a fragment that re-reads the
workspace every ``POLL_S`` seconds (the worker process writes there); when the
run ends it reruns the whole page once and stops polling.
"""

from __future__ import annotations

import streamlit as st

from core.datasets.catalog import load_dataset
from core.errors import LabelTuneError
from core.jobs import queue
from core.jobs.store import JobStatus
from core.runs import store as runs
from core.store.workspace import Workspace
from core.training.jobs import resume_run
from core.training.plan import plan_line, wants_measuring
from ui.common import lang, md_message, md_text, show_error, t, workspace
from ui.guard import guarded
from ui.train_views import POLL_S, curves, eta_text, pct


def device_text(device: dict) -> str:
    parts = [f"{device['gpus']} GPU" if device.get("gpus") else "CPU"]
    if device.get("replicas", 1) > 1:
        parts.append(f"{device['strategy']} ×{device['replicas']}")
    if device.get("jit_compile"):
        parts.append("XLA")
    if device.get("mixed_precision"):
        parts.append("mixed_float16")
    return " · ".join(parts)


def dataset_version(ws: Workspace, name: str) -> int | None:
    try:
        return load_dataset(ws, name).version
    except LabelTuneError:  # the dataset was deleted since
        return None


def run_panel(run_id: str) -> None:
    live = runs.get_run(workspace(), run_id).live
    st.fragment(guarded(_panel), run_every=POLL_S if live else None)(run_id, live)


def _panel(run_id: str, was_live: bool) -> None:
    ws = workspace()
    run = runs.get_run(ws, run_id)
    if was_live and not run.live:
        st.rerun()  # it just ended: refresh the history and the buttons, and stop polling
    config = run.config
    st.markdown(f"**{md_text(run.label)}** · {t(f'status.{run.status}')}")
    st.caption(
        t(
            "train.run_caption",
            backbone=md_text(config.backbone),  # a preset folder's path, as typed
            weights=md_text(run.weights_used or config.weights),
            size=config.size,
            batch=(run.device or {}).get("batch_size") or config.batch_size or t("train.batch_auto"),
            device=device_text(run.device) if run.device else "…",
        )
    )
    plan = plan_line(run.device.get("plan"), lang())
    if plan:
        st.caption(f"📐 {md_text(plan)}")
    if run.error:
        st.error(md_message(run.error), icon="⚠️")
    if run.note:
        st.caption(f"📝 {md_text(run.note)}")
    version = dataset_version(ws, run.dataset_name)
    if version is None:
        st.caption(t("train.dataset_deleted"))
    elif version != run.dataset_version:
        st.warning(t("train.dataset_changed", trained=run.dataset_version, now=version), icon="🔄")
    else:
        st.caption(t("train.dataset_same", version=version))
    if run.live:
        _live(run)
    else:
        _finished(run)
    epochs = runs.read_metrics(ws, run.id)
    if epochs:
        curves(epochs)


def _waiting(run: runs.Run) -> None:
    """A queued run: its place in the queue, and cancel instead of stop."""
    ws = workspace()
    st.info(t("train.waiting", position=queue.position(ws, run.job.id) or 1), icon="⏳")
    if st.button(t("train.queue_cancel"), key="cancel_selected"):
        try:
            queue.cancel(ws, run.job.id)
        except LabelTuneError as exc:  # its worker claimed it meanwhile
            show_error(exc)
        else:
            st.rerun()


def _live(run: runs.Run) -> None:
    ws = workspace()
    if run.status is JobStatus.QUEUED and run.job.dispatched_at is None:
        _waiting(run)
        return
    latest = runs.latest_metrics(ws, run.id)
    planned = run.planned_epochs
    if not latest:
        measuring = wants_measuring(run.config) and not run.device.get("plan")
        st.info(t("train.measuring" if measuring else "train.preparing"), icon="⏳")
    else:
        done = latest["epoch"] + (1 if latest["kind"] == "epoch" else 0)
        st.progress(
            min(done / max(planned, 1), 1.0),
            text=t(
                "train.progress",
                epoch=latest["epoch"] + 1,
                total=planned,
                phase=t(f"train.phase_{latest['phase']}"),
                speed=latest.get("images_per_s", 0.0),
                eta=eta_text(latest.get("eta_s", 0.0)),
            ),
        )
    if run.job.stop_requested:
        st.info(t("train.stop_requested"), icon="✋")
    elif st.button(t("train.stop"), key="stop"):
        try:
            runs.request_stop(ws, run.id)
        except LabelTuneError as exc:  # it ended between the poll and the click
            show_error(exc)
        else:
            st.info(t("train.stop_requested"), icon="✋")


def _finished(run: runs.Run) -> None:
    cols = st.columns(5)
    objective = run.best.get("val_objective")
    cols[0].metric(
        t("train.best_val"),
        pct(run.best.get("val_accuracy")),
        help=t("train.best_val_help", epoch=run.best["epoch"] + 1, objective=f"{objective:.3f}")
        if objective is not None and "epoch" in run.best
        else None,
    )
    log_loss = run.final.get("val_log_loss")
    cols[1].metric(
        t("train.val_log_loss"), "—" if log_loss is None else f"{log_loss:.3f}", help=t("train.val_log_loss_help")
    )
    cols[2].metric(t("train.test_acc"), pct(run.final.get("test_accuracy")))
    cols[3].metric(t("train.epochs_run"), run.epochs_run)
    cols[4].metric(
        t("train.time_actual"),
        eta_text(run.train_seconds),
        help=t("train.time_estimate", time=eta_text(run.estimate["total_s"])) if run.estimate else None,
    )
    if run.estimate:
        st.caption(t("train.time_vs", estimate=eta_text(run.estimate["total_s"]), actual=eta_text(run.train_seconds)))
    if run.model_path:
        st.caption(t("train.model_saved", path=run.model_path))
        left, right = st.columns(2)
        left.page_link("pages/evaluate.py", label=t("train.next_evaluate"), icon="📊")
        right.page_link("pages/predict.py", label=t("train.next_predict"), icon="🔮")
    manage_run(run)
    if run.status in runs.RESUMABLE and st.button(t("train.resume"), key="resume"):
        try:
            resume_run(workspace(), run.id)
        except LabelTuneError as exc:
            show_error(exc)
        else:
            st.toast(t("train.resumed", run=run.id))
            st.rerun()


def manage_run(run: runs.Run) -> None:
    """Title and note; delete (with a confirmation) once the run no longer trains."""
    ws = workspace()
    with st.expander(t("train.manage"), icon="🗂️"):
        title = st.text_input(t("train.title"), run.title, key=f"title_{run.id}", max_chars=80)
        note = st.text_area(t("train.note"), run.note, key=f"note_{run.id}", height=80)
        if st.button(t("train.save_note"), key="save_note"):
            runs.annotate_run(ws, run.id, title=title, note=note)
            st.rerun()
        sure = st.checkbox(t("train.delete_confirm"), key=f"delete_sure_{run.id}")
        if st.button(t("train.delete"), key="delete_run", disabled=not sure, type="primary"):
            try:
                runs.delete_run(ws, run.id)
            except LabelTuneError as exc:
                show_error(exc)
            else:
                st.session_state.pop("run", None)
                st.toast(t("train.deleted", run=run.id))
                st.rerun()
