"""Label page: browse and relabel a dataset, manage its classes and their descriptions (标签说明), label
unlabeled images fast, undo, export. Every change goes through core.datasets.editing."""

import pandas as pd
import streamlit as st

from core.datasets import editing
from core.datasets.catalog import images_by_id, load_dataset
from core.errors import LabelTuneError
from core.evaluation.suggestions import description_scores
from ui.app import through_navigation
from ui.common import dataset_picker_ui, md_text, show_error, t, workspace
from ui.dataset_views import class_chart
from ui.label_audit import audit_ui
from ui.label_descriptions import description_row, rescore_ui, score_columns
from ui.label_export import export_ui
from ui.label_queue import queue_ui
from ui.label_review import review_ui
from ui.label_views import actions_ui, filter_ui, gallery_ui, open_image_ui, undo

through_navigation()  # run on its own (a deep link to a fresh server), the page opens inside the app

VIEWS = ("gallery", "queue", "review", "audit", "classes", "export")

ws = workspace()
st.header(t("nav.label"))
dataset = dataset_picker_ui("label_dataset")
summary = load_dataset(ws, dataset)
classes = list(summary.classes)
st.caption(t("label.summary", version=summary.version, unlabeled=summary.unlabeled, classes=len(classes)))
st.session_state.setdefault("label_view", VIEWS[0])  # a default in the state, so a link can choose the view
if "label_open_view" in st.session_state:  # opened from elsewhere on a view (the Dataset page's audit link)
    st.session_state["label_view"] = st.session_state.pop("label_open_view")
# One view at a time (not st.tabs, which runs every tab's code on each rerun: the gallery's 60 thumbnails
# and the duplicate search ran on every key press of the labeling queue).
view = (
    st.segmented_control(t("label.view"), VIEWS, format_func=lambda v: t(f"label.tab_{v}"), key="label_view")
    or VIEWS[0]
)
if view == "gallery":
    f = filter_ui(classes, dataset)
    selected = gallery_ui(dataset, f)
    actions_ui(dataset, classes, selected, f)
    if st.button(t("label.undo"), key="undo"):
        st.toast(t("label.undone", count=undo(dataset)))
        st.rerun()
    open_image_ui(dataset, summary.descriptions)
elif view == "queue":
    queue_ui(dataset, classes, summary.descriptions)
elif view == "review":
    review_ui(dataset, classes)
elif view == "audit":
    audit_ui(dataset)
elif view == "classes":
    st.subheader(t("label.balance"))
    class_chart(summary)
    scored = description_scores(ws, dataset)
    table = pd.DataFrame([{**description_row(c, summary), **score_columns(scored, c)} for c in classes])
    st.dataframe(table, hide_index=True, key="class_table")
    rescore_ui(dataset, scored)
    try:
        described = st.selectbox(t("label.describe"), classes, key="describe_class")
        text = st.text_area(
            t("eval.col_description"),
            summary.descriptions.get(described, ""),
            help=t("label.description_help"),
            key=f"desc_{described}",
        )
        if st.button(t("label.save_descriptions"), disabled=described is None, key="save_description"):
            editing.describe_class(ws, dataset, described, text)
            st.rerun()
        examples = editing.class_examples(ws, dataset).get(described, [])
        if examples:
            st.image([str(r.thumb) for r in images_by_id(ws, examples).values()], width=96, caption=None)
        up, down, _ = st.columns([1, 1, 4])
        if up.button(t("label.move_up"), key="class_up"):
            editing.move_class(ws, dataset, described, -1)
            st.rerun()
        if down.button(t("label.move_down"), key="class_down"):
            editing.move_class(ws, dataset, described, 1)
            st.rerun()
        a, b = st.columns(2)
        new_class = a.text_input(t("label.add_class"), key="add_class")
        if a.button(t("label.add"), disabled=not new_class.strip(), key="add"):
            editing.add_class(ws, dataset, new_class)
            st.rerun()
        old = b.selectbox(t("label.rename_from"), classes, key="rename_from")
        new_name = b.text_input(t("label.rename_to"), key="rename_to")
        if b.button(t("label.rename"), disabled=not new_name.strip(), key="rename"):
            editing.rename_class(ws, dataset, old, new_name)
            st.rerun()
        source = a.selectbox(t("label.merge_from"), classes, key="merge_from")
        target = a.selectbox(t("label.merge_into"), [c for c in classes if c != source], key="merge_into")
        if a.button(t("label.merge"), disabled=target is None, key="merge"):
            editing.merge_classes(ws, dataset, source, target)
            st.rerun()
        doomed = b.selectbox(t("label.delete_class"), classes, key="delete_class")
        sure = b.checkbox(
            t("label.delete_confirm", count=summary.classes.get(doomed, 0), name=md_text(doomed)), key="delete_sure"
        )
        if b.button(t("label.delete"), disabled=not sure, key="delete"):
            editing.delete_class(ws, dataset, doomed)
            st.rerun()
    except LabelTuneError as exc:
        show_error(exc)
else:
    export_ui(dataset)
