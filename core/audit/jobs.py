"""The audit as a job: one feature vector per active image from a backbone (cached by content, so a second
audit computes only new images), then the finders (``core.audit.findings``), stored for the dataset
version it looked at (``core.audit.store``). A light job, like predictions: it runs beside training."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from core.audit import findings
from core.audit.config import AuditConfig
from core.audit.store import AuditImage, audit_images, save_audit
from core.errors import DatasetError
from core.jobs.runner import JobContext, JobKind
from core.jobs.store import Resource
from core.runs.config import check_weights_file
from core.store.workspace import Workspace

STEPS = ("labels", "duplicates", "outliers", "map")


def class_indices(images: list[AuditImage]) -> tuple[list[str], np.ndarray]:
    """The classes the images carry (sorted) and each image's index among them (-1: unlabelled)."""
    classes = sorted({im.label for im in images if im.label is not None})
    index = {name: i for i, name in enumerate(classes)}
    return classes, np.asarray([index.get(im.label, -1) if im.label else -1 for im in images], dtype=np.int64)


def find_all(x: np.ndarray, images: list[AuditImage], config: AuditConfig, step: Any = None) -> dict[str, Any]:
    """Every finder on the vectors ``x`` (one row per image): the result an audit stores.
    ``step(name)`` is told as each finder starts."""
    step = step or (lambda name: None)
    classes, labels = class_indices(images)
    xn = findings.normalise(x)
    step("labels")
    probs = findings.out_of_fold_probs(xn, labels, len(classes), config.folds, config.seed)
    issues = findings.label_issues(labels, probs)
    step("duplicates")
    pairs = findings.near_duplicates(xn, config.similarity)
    step("outliers")
    far, distance = findings.outliers(findings.unit(x), labels)
    step("map")
    coords = findings.project(xn, config.seed)
    ids = [im.id for im in images]
    return {
        "label_issues": [
            {"image": ids[r], "given": classes[labels[r]], "suggested": classes[s], "score": float(score)}
            for r, s, score in zip(issues.rows.tolist(), issues.suggested.tolist(), issues.scores, strict=True)
        ],
        "near_duplicates": [{"images": [ids[i], ids[j]], "similarity": sim} for i, j, sim in pairs],
        "outliers": [{"image": ids[r], "score": float(d)} for r, d in zip(far.tolist(), distance, strict=True)],
        "map": {"ids": ids, "x": coords[:, 0].round(3).tolist(), "y": coords[:, 1].round(3).tolist()},
    }


def _audit(ctx: JobContext, config: AuditConfig) -> dict[str, Any]:
    import keras

    from core.training.features import image_vectors
    from core.training.model import build_model, weights_identity

    started = time.monotonic()
    ws = ctx.ws
    ds, version, images = audit_images(ws, config.dataset)
    if len(images) < 2:
        raise DatasetError("err.audit_too_few", dataset=config.dataset, count=len(images))
    ctx.progress(0, len(images), "job.audit_features")
    keras.utils.set_random_seed(config.seed)
    base = [config.backbone, weights_identity(config.weights), config.size]
    if config.weights == "none":
        base.append(config.seed)  # random weights: the seed decides the features
    pairs = [(im.content_hash, str(ws.path_of(im.path))) for im in images]

    def progress(done: int, total: int) -> None:
        ctx.progress(done, total, "job.audit_features")

    def make_model() -> object:  # only when some image's vector is not cached yet
        return build_model(
            config.backbone, n_classes=2, size=config.size, weights=config.weights, dropout=0.0, seed=config.seed
        ).model

    x = image_vectors(ws, ds, make_model, json.dumps(base), pairs, progress)
    keras.backend.clear_session()

    def step(name: str) -> None:
        ctx.progress(STEPS.index(name), len(STEPS), f"job.audit_{name}")

    result = find_all(x, images, config, step)
    seconds = time.monotonic() - started
    audit_id = save_audit(ws, ds, version, config, result, seconds)
    return {
        "audit": audit_id,
        "images": len(images),
        **{key: len(result[key]) for key in ("label_issues", "near_duplicates", "outliers")},
        "seconds": round(seconds, 1),
    }


AUDIT: JobKind[AuditConfig] = JobKind("audit", Resource.LIGHT, AuditConfig.from_dict, _audit)


def start_audit(ws: Workspace, config: AuditConfig) -> int:
    """Queue an audit of the dataset (or find the one already queued or running)."""
    check_weights_file(config.weights)
    audit_images(ws, config.dataset)  # an unknown dataset is named now, not in a failed job
    return AUDIT.submit(ws, config, dedupe=f"audit|{config.dataset}")
