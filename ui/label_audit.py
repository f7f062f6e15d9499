"""The Label page's Audit view: run the audit as a job (its progress, Cancel), then its three ranked lists
side by side with thumbnails (probable label errors with the suggested label, near-duplicates with the
splits and labels of both, outliers), each finding answered in one click (accept, keep, exclude, keep one
copy), Undo as elsewhere on the page, and the map (``ui.label_audit_map``). Fixes go through
``core.datasets.editing`` and make a new dataset version; "keep" answers are stored with the audit."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.audit import store as audit_store
from core.audit.config import AuditConfig
from core.audit.jobs import AUDIT, start_audit
from core.audit.store import AuditImage, AuditReport
from core.errors import LabelTuneError
from core.jobs.store import find_live, list_jobs
from core.store.server_paths import inside_roots
from ui.common import cell, md_text, show_error, t, workspace
from ui.jobs import ended_ui, job_ui
from ui.label_audit_map import map_ui
from ui.label_views import exclude_with_undo, push_undo, relabel_with_undo, undo
from ui.train_form import setting_widget

SECTIONS = ("labels", "duplicates", "outliers", "map")
SHOWN = 12  # findings of a list on screen; answering one brings up the next
THUMB = 120


def audit_ui(dataset: str) -> None:
    ws = workspace()
    found = audit_store.report(ws, dataset)
    with st.expander(t("audit.settings"), icon="⚙️", expanded=False):
        columns = st.columns(3)
        values = {f.name: setting_widget(columns[i % 3], f, prefix="audit_",
                                         texts=(t(f"audit.field_{f.name}"), t(f"audit.help_{f.name}")))
                  for i, f in enumerate(AuditConfig.user_fields())}  # fmt: skip
    live = find_live(ws, AUDIT.name, f"audit|{dataset}")
    if live is not None:
        job_ui(live.id, "audit")
    else:
        last = next(iter(list_jobs(ws, kinds=(AUDIT.name,), limit=1)), None)
        if last is not None and last.params.get("dataset") == dataset:
            ended_ui(last)
        label = t("audit.run_again" if found else "audit.run")
        if st.button(label, key="audit_run", type="secondary" if found else "primary", icon="🔎"):
            try:
                if values["weights"] not in ("imagenet", "none"):  # a file typed here: inside the server's roots
                    values["weights"] = str(inside_roots(ws, values["weights"]))
                job_ui(start_audit(ws, AuditConfig(dataset, **values)), "audit")
            except LabelTuneError as exc:
                show_error(exc)
    if found is None:
        st.caption(t("audit.none_yet"))
        return
    st.caption(t("audit.summary", images=len(found.images), at=found.audit.created_at[:16].replace("T", " "),
                 backbone=found.audit.config.backbone, seconds=round(found.audit.seconds)))  # fmt: skip
    if found.stale:
        st.caption(t("audit.stale", then=found.audit.dataset_version, now=found.version))
    counts = {"labels": len(found.label_issues), "duplicates": len(found.near_duplicates),
              "outliers": len(found.outliers), "map": len(found.images)}  # fmt: skip
    section = st.segmented_control(
        t("audit.section"), SECTIONS, default=SECTIONS[0], key="audit_section",
        format_func=lambda s: t(f"audit.section_{s}", count=counts[s]),
    ) or SECTIONS[0]  # fmt: skip
    if st.button(t("label.undo"), key="audit_undo", icon="↩️"):
        st.toast(t("label.undone", count=undo(dataset)))
        st.rerun()
    try:
        if section == "labels":
            _label_issues_ui(dataset, found)
        elif section == "duplicates":
            _pairs_ui(dataset, found)
        elif section == "outliers":
            _outliers_ui(dataset, found)
        else:
            map_ui(dataset, found)
    except LabelTuneError as exc:
        show_error(exc)


def _image(column: Any, image: AuditImage) -> None:
    """A thumbnail with its file name, split and label, shown as typed."""
    column.image(cell(str(workspace().path_of(image.thumb))), width=THUMB)
    split = t(f"split.{image.split}") if image.split else "–"
    column.caption(f"{md_text(image.file)}  \n{md_text(image.label or t('label.unlabeled'))} · {split}")


def _keep(dataset: str, finding: str) -> None:
    audit_store.keep(workspace(), dataset, [finding])
    push_undo("kept", [finding])


def _label_issues_ui(dataset: str, found: AuditReport) -> None:
    st.caption(t("audit.labels_help"))
    columns = st.columns(4)
    for n, issue in enumerate(found.label_issues[:SHOWN]):
        column = columns[n % 4].container(border=True)
        _image(column, issue.image)
        column.markdown(t("audit.suggested", given=md_text(issue.given), suggested=md_text(issue.suggested)))
        column.caption(t("audit.score", score=f"{issue.score:.2f}"))
        key = issue.image.id
        if column.button(t("audit.accept", label=md_text(issue.suggested)), key=f"accept_{key}", type="primary"):
            relabel_with_undo(dataset, [key], issue.suggested)
            st.rerun()
        if column.button(t("audit.keep_label"), key=f"keep_label_{key}"):
            _keep(dataset, audit_store.label_finding(key))
            st.rerun()
        if column.button(t("label.exclude"), key=f"exclude_label_{key}"):
            exclude_with_undo(dataset, [key])
            st.rerun()


def _pairs_ui(dataset: str, found: AuditReport) -> None:
    st.caption(t("audit.duplicates_help", threshold=found.audit.config.similarity))
    for pair in found.near_duplicates[:SHOWN]:
        a, b = pair.images
        cells = st.columns([1, 1, 2])
        for column, image, other in ((cells[0], a, b), (cells[1], b, a)):
            _image(column, image)
            if column.button(t("audit.keep_this"), key=f"keep_this_{image.id}_{other.id}"):
                exclude_with_undo(dataset, [other.id])
                st.rerun()
        flags = [t("audit.leak")] if pair.leak else []
        flags += [t("audit.conflict")] if pair.conflict else []
        cells[2].markdown(" · ".join([t("audit.similarity", value=f"{pair.similarity:.3f}"), *flags]))
        if cells[2].button(t("audit.keep_both"), key=f"keep_both_{a.id}_{b.id}"):
            _keep(dataset, audit_store.pair_finding(a.id, b.id))
            st.rerun()
        st.divider()


def _outliers_ui(dataset: str, found: AuditReport) -> None:
    st.caption(t("audit.outliers_help"))
    columns = st.columns(4)
    for n, outlier in enumerate(found.outliers[:SHOWN]):
        column = columns[n % 4].container(border=True)
        _image(column, outlier.image)
        column.caption(t("audit.distance", value=f"{outlier.score:.2f}"))
        key = outlier.image.id
        if column.button(t("label.exclude"), key=f"exclude_outlier_{key}"):
            exclude_with_undo(dataset, [key])
            st.rerun()
        if column.button(t("audit.belongs"), key=f"keep_outlier_{key}"):
            _keep(dataset, audit_store.outlier_finding(key))
            st.rerun()
