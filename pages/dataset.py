"""Dataset page: import a zip, then see classes, splits, samples and the quality report."""

from pathlib import Path

import streamlit as st

from core.datasets.catalog import dataset_names, load_dataset, sample_thumbnails
from core.datasets.ingest import import_archive
from core.datasets.splits import SplitConfig
from core.errors import LabelTuneError
from ui.common import show_error, t, workspace
from ui.dataset_manage import add_images_ui, manage_ui
from ui.dataset_views import class_chart, class_table, quality_report, samples
from ui.welcome import sample_button_ui, welcome_ui

ws = workspace()
st.header(t("dataset.header"))


def import_ui(first_time: bool) -> None:
    """The upload form (open when the workspace is empty); on success selects the new dataset and reruns."""
    with st.expander(t("dataset.import_header"), expanded=first_time, icon="📦"):
        upload = st.file_uploader(t("dataset.upload"), type=["zip"], help=t("dataset.upload_help"), key="upload")
        name = st.text_input(t("dataset.name"), placeholder=Path(upload.name).stem if upload else "", key="new_name")
        st.caption(t("dataset.split_header"))
        left, middle, right = st.columns(3)
        val_pct = left.number_input(t("dataset.val_pct"), 0, 50, 15, key="val_pct")
        test_pct = middle.number_input(t("dataset.test_pct"), 0, 50, 15, key="test_pct")
        seed = right.number_input(t("dataset.seed"), 0, 2**31 - 1, SplitConfig.seed, key="split_seed")
        if not st.button(t("dataset.import_button"), type="primary", disabled=upload is None, key="import"):
            return
        bar = st.progress(0.0)

        def progress(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=t("dataset.importing", done=done, total=total))

        try:
            split = SplitConfig.held_out(val_pct / 100, test_pct / 100, int(seed))
            result = import_archive(
                ws, upload, archive_name=upload.name, name=name.strip() or None, split=split, progress=progress
            )
        except LabelTuneError as exc:
            bar.empty()
            show_error(exc)
            return
        # Rerun so the sidebar's dataset count (drawn before this page) includes the new dataset.
        st.session_state["dataset"] = result.dataset
        st.session_state["imported"] = t(
            "dataset.imported", images=result.images, name=result.dataset, seconds=result.seconds
        )
        st.rerun()


if "imported" in st.session_state:
    st.success(st.session_state.pop("imported"))
names = dataset_names(ws)
if not names:
    welcome_ui()
    sample_button_ui()
import_ui(first_time=not names)
if not names:
    st.info(t("dataset.none_yet"))
    st.stop()
if "select_dataset" in st.session_state:
    st.session_state["dataset"] = st.session_state.pop("select_dataset")
if st.session_state.get("dataset") not in names:
    st.session_state["dataset"] = names[0]
selected = st.selectbox(t("dataset.choose"), names, key="dataset")
try:
    summary = load_dataset(ws, selected)
except LabelTuneError as exc:
    show_error(exc)
    st.stop()
st.caption(
    t(
        "dataset.summary",
        images=summary.images,
        classes=len(summary.classes),
        unlabeled=summary.unlabeled,
        layout=t(f"layout.{summary.layout}"),
        source=summary.source,
    )
)
cols = st.columns(4)
for col, (split_name, count) in zip(cols, summary.splits.items(), strict=False):
    col.metric(t(f"split.{split_name}"), count)
cols[3].metric(t("dataset.unlabeled_class"), summary.unlabeled)
st.subheader(t("dataset.classes_header"))
chart, table = st.columns(2)
with chart:
    class_chart(summary)
with table:
    class_table(summary)
quality_report(summary.report)
add_images_ui(selected)
manage_ui(selected)
st.subheader(t("dataset.samples_header"))
samples(sample_thumbnails(ws, summary.id))
