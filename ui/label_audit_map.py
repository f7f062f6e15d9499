"""The audit's map: every image the audit saw as a point (t-SNE of its features), coloured by its label
now, flagged images marked; points selected on the chart (click, box or lasso) show their thumbnails and
can be relabelled or excluded together, through the same editing core as the gallery."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from core.audit import store as audit_store
from core.audit.store import AuditReport
from core.datasets.catalog import load_dataset
from core.errors import LabelTuneError
from core.store.vocabulary import ImageStatus
from ui.common import cell, plot_text, show_error, t, workspace
from ui.label_views import exclude_with_undo, relabel_with_undo

SELECTED_SHOWN = 24


def _flagged(found: AuditReport) -> set[int]:
    ids = {i.image.id for i in found.label_issues} | {o.image.id for o in found.outliers}
    return ids | {im.id for p in found.near_duplicates for im in p.images}


def map_ui(dataset: str, found: AuditReport) -> None:
    points = found.audit.result["map"]
    flagged = _flagged(found)
    by_label: dict[str, list[int]] = {}
    for n, image_id in enumerate(points["ids"]):
        image = found.images.get(image_id)
        if image is not None and image.status == ImageStatus.ACTIVE:
            by_label.setdefault(image.label or t("label.unlabeled"), []).append(n)
    fig = go.Figure()
    for label, rows in sorted(by_label.items()):
        fig.add_trace(go.Scattergl(
            x=[points["x"][r] for r in rows], y=[points["y"][r] for r in rows], mode="markers", name=plot_text(label),
            customdata=[points["ids"][r] for r in rows],
            hovertext=[plot_text(found.images[points["ids"][r]].file) for r in rows], hoverinfo="text+name",
            marker={"size": [11 if points["ids"][r] in flagged else 6 for r in rows],
                    "symbol": ["x" if points["ids"][r] in flagged else "circle" for r in rows]},
        ))  # fmt: skip
    fig.update_layout(height=520, margin={"l": 10, "r": 10, "t": 30, "b": 10}, dragmode="lasso",
                      legend={"orientation": "h", "y": -0.05}, xaxis={"visible": False}, yaxis={"visible": False})  # fmt: skip
    st.caption(t("audit.map_help"))
    event = st.plotly_chart(fig, on_select="rerun", selection_mode=("points", "box", "lasso"), key="audit_map")
    chosen = sorted({int(p["customdata"]) for p in event.selection.points if p.get("customdata") is not None})
    if chosen:
        _selection_ui(dataset, chosen)


def _selection_ui(dataset: str, chosen: list[int]) -> None:
    st.caption(t("audit.map_selected", count=len(chosen)))
    thumbs = audit_store.thumbs(workspace(), chosen[:SELECTED_SHOWN])
    st.image([cell(thumbs[i]) for i in chosen[:SELECTED_SHOWN] if i in thumbs], width=96)
    classes = list(load_dataset(workspace(), dataset).classes)
    left, middle, right = st.columns([2, 1, 1])
    target = left.selectbox(t("label.move_to"), classes, key="map_target")
    try:
        if middle.button(t("label.move"), type="primary", disabled=target is None, key="map_move"):
            relabel_with_undo(dataset, chosen, target)
            st.rerun()
        if right.button(t("label.exclude"), key="map_exclude"):
            exclude_with_undo(dataset, chosen)
            st.rerun()
    except LabelTuneError as exc:
        show_error(exc)
