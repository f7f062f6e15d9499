"""Dataset page: import a zip (a job: the page never waits for it), then see classes, splits, samples and the
quality report."""

import streamlit as st

from core.datasets.catalog import dataset_names, load_dataset, sample_thumbnails
from core.errors import LabelTuneError
from core.store.workspace import Workspace
from ui.app import through_navigation
from ui.common import show_error, t, workspace
from ui.dataset_manage import add_images_ui, import_jobs_ui, import_ui, manage_ui
from ui.dataset_views import class_chart, class_table, quality_report, samples
from ui.welcome import sample_button_ui, welcome_ui


def dataset_ui(ws: Workspace, names: list[str]) -> None:
    """The chosen dataset: its figures, classes, quality report, more images, management and samples.
    (It returns where it is done rather than stopping the page: a run that ends with st.stop keeps
    widgets it no longer draws, an emptied uploader's bytes among them.)"""
    if "select_dataset" in st.session_state:
        st.session_state["dataset"] = st.session_state.pop("select_dataset")
    if st.session_state.get("dataset") not in names:
        st.session_state["dataset"] = names[0]
    selected = st.selectbox(t("dataset.choose"), names, key="dataset")
    try:
        summary = load_dataset(ws, selected)
    except LabelTuneError as exc:
        show_error(exc)
        return
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
    quality_report(summary.report, selected)
    add_images_ui(selected)
    manage_ui(selected)
    st.subheader(t("dataset.samples_header"))
    samples(sample_thumbnails(ws, summary.id))


through_navigation()  # run on its own (a deep link to a fresh server), the page opens inside the app

ws = workspace()
st.header(t("dataset.header"))

if "imported" in st.session_state:
    st.success(st.session_state.pop("imported"))
import_jobs_ui()
names = dataset_names(ws)
if not names:
    welcome_ui()
    sample_button_ui()
import_ui(first_time=not names)
if names:
    dataset_ui(ws, names)
else:
    st.info(t("dataset.none_yet"))
