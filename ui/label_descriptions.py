"""The Label page's classes table: each class's images and description (标签说明), and how well the
description works as a zero-shot prompt (the newest zero-shot run's recall and precision on the labelled
validation images), with a button that scores the descriptions again after an edit (a new zero-shot run)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.datasets.catalog import DatasetSummary
from core.errors import LabelTuneError
from core.evaluation.suggestions import DescriptionScore
from core.runs import store as runs
from core.training.jobs import start_run
from core.training.zero_shot import zero_shot_config
from ui.common import md_text, show_error, t, workspace


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def description_row(name: str, summary: DatasetSummary) -> dict[str, Any]:
    return {
        t("eval.col_class"): name,
        t("eval.col_support"): summary.classes[name],
        t("eval.col_description"): summary.descriptions[name],
    }


def score_columns(scored: tuple[runs.Run, dict[str, DescriptionScore]] | None, name: str) -> dict[str, str]:
    """The zero-shot recall and precision of one class's prompt, when a zero-shot run has scored them."""
    if scored is None:
        return {}
    score = scored[1].get(name)
    return {
        t("label.col_prompt_recall"): _pct(score.recall if score else None),
        t("label.col_prompt_precision"): _pct(score.precision if score else None),
    }


def rescore_ui(dataset: str, scored: tuple[runs.Run, dict[str, DescriptionScore]] | None) -> None:
    """Which run scored the descriptions, and scoring them again with the same model and template."""
    if scored is None:
        st.caption(t("label.prompts_unscored"))
        return
    run = scored[0]
    st.caption(t("label.prompts_scored", run=md_text(run.label), model=md_text(run.config.backbone)))
    if st.button(t("label.rescore"), key="rescore", help=t("label.rescore_help")):
        try:
            new = start_run(workspace(), zero_shot_config(dataset, run.config.backbone, run.config.prompt_template))
        except LabelTuneError as exc:
            show_error(exc)
        else:
            st.success(t("zero.started", run=new))
