"""Rendering a dataset: class chart, split table, samples and the quality report."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from core.datasets.catalog import UNLABELED, DatasetSummary
from core.i18n import render
from ui.common import cell, lang, md_message, md_text, plot_text, t

SPLIT_COLOURS = {"train": "#2f6fdf", "val": "#f2a93b", "test": "#3bb273"}
# Classes shown in the sample grid; a dataset with more shows the first ones and says so.
MAX_SAMPLE_CLASSES = 30


def class_chart(summary: DatasetSummary) -> None:
    rows = [
        {"class": plot_text(name), "split": t(f"split.{split}"), "images": count}
        for name, per_split in summary.by_split.items()
        for split, count in per_split.items()
    ]
    if not rows:
        return
    colours = {t(f"split.{s}"): c for s, c in SPLIT_COLOURS.items()}
    fig = px.bar(
        pd.DataFrame(rows),
        x="class",
        y="images",
        color="split",
        color_discrete_map=colours,
        labels={"class": t("dataset.col_class"), "images": t("dataset.col_images"), "split": ""},
    )
    fig.update_layout(
        height=320,
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
    )
    st.plotly_chart(fig, key="class_chart")


def class_table(summary: DatasetSummary) -> None:
    """One row per class: images per split, total and its description (标签说明)."""
    frame = pd.DataFrame(
        [
            {
                t("dataset.col_class"): name,
                **{t(f"split.{s}"): n for s, n in per.items()},
                t("dataset.col_images"): summary.classes[name],
                t("dataset.col_description"): summary.descriptions[name],
            }
            for name, per in summary.by_split.items()
        ]
    )
    st.dataframe(frame, hide_index=True, key="class_table")


def samples(grid: dict[str, list], per_row: int = 8) -> None:
    for shown, (name, paths) in enumerate(grid.items()):
        if shown == MAX_SAMPLE_CLASSES:
            break
        st.markdown(f"**{md_text(name) if name != UNLABELED else t('dataset.unlabeled_class')}**")
        st.image([cell(str(p)) for p in paths[:per_row]], width=96)


def quality_report(report: dict, dataset: str) -> None:
    language = lang()
    st.subheader(t("report.header"))
    if st.button(t("dataset.audit_link"), key="open_audit", icon="🔎"):  # the Label page's Audit view
        st.session_state["label_open_view"] = "audit"
        st.session_state["label_dataset"] = dataset
        st.switch_page("pages/label.py")
    warnings = report.get("warnings", [])
    for warning in warnings:
        st.warning(md_message(warning))
    if not warnings:
        st.success(t("report.all_good"))
    skipped = report.get("skipped", [])
    if skipped:
        with st.expander(t("report.skipped", count=len(skipped))):
            rows = [
                {
                    t("report.col_entry"): s["entry"],
                    t("report.col_reason"): render(s, language),
                }
                for s in skipped
            ]
            st.dataframe(pd.DataFrame(rows), hide_index=True, key="skipped_table")
    duplicates = report.get("duplicates", [])
    if duplicates:
        with st.expander(t("report.duplicates", count=len(duplicates))):
            rows = [{t("report.col_files"): " · ".join(d["names"])} for d in duplicates]
            st.dataframe(pd.DataFrame(rows), hide_index=True, key="duplicates_table")
    conflicts = report.get("label_conflicts", [])
    if conflicts:
        with st.expander(t("report.conflicts", count=len(conflicts))):
            rows = [
                {t("report.col_files"): " · ".join(c["names"]), t("report.col_labels"): " / ".join(c["labels"])}
                for c in conflicts
            ]
            st.dataframe(pd.DataFrame(rows), hide_index=True, key="conflicts_table")
    small = report.get("small_images", [])
    if small:
        with st.expander(t("report.small", count=len(small))):
            rows = [
                {t("report.col_entry"): s["name"], t("report.col_size"): f"{s['width']}×{s['height']}"} for s in small
            ]
            st.dataframe(pd.DataFrame(rows), hide_index=True, key="small_table")
