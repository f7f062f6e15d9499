"""Metrics of a run on a split, from its stored predictions, with scikit-learn.

Everything here is numpy and scikit-learn: the Evaluate page and ``python -m core evaluate`` call it
without TensorFlow, and both show the same numbers because both read the same stored predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.runs.predictions import SplitPredictions

# Bins of the reliability diagram and the expected calibration error: 10 equal-width confidence bins,
# as in Guo et al. (2017), "On Calibration of Modern Neural Networks".
CALIBRATION_BINS = 10
# Top-k accuracy is shown when there are more classes than this k.
TOP_K = 3


def split_figures(p: SplitPredictions) -> dict[str, float]:
    """Headline figures: accuracy, macro F1, top-3 accuracy (more than 3 classes), log loss, ECE."""
    from sklearn import metrics as skm  # about a second to import: not at the CLI's start

    n = len(p.classes)
    labels = np.arange(n)
    out: dict[str, float] = {"images": float(len(p))}
    if not len(p):
        return out
    out["accuracy"] = float(skm.accuracy_score(p.labels, p.predicted))
    out["macro_f1"] = float(skm.f1_score(p.labels, p.predicted, labels=labels, average="macro", zero_division=0))
    if n > TOP_K:
        out["top3_accuracy"] = float(skm.top_k_accuracy_score(p.labels, p.probs, k=TOP_K, labels=labels))
    out["log_loss"] = float(skm.log_loss(p.labels, p.probs, labels=labels))
    out["ece"] = calibration(p)["ece"]
    return out


def per_class(p: SplitPredictions) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support of each class, in the run's class order."""
    from sklearn import metrics as skm  # about a second to import: not at the CLI's start

    labels = np.arange(len(p.classes))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        p.labels, p.predicted, labels=labels, zero_division=0
    )
    return [
        {"class": c, "precision": float(pr), "recall": float(rc), "f1": float(f), "support": int(s)}
        for c, pr, rc, f, s in zip(p.classes, precision, recall, f1, support, strict=True)
    ]


def fairness(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The worst class (lowest F1 among classes with images) and the spread of recall across classes."""
    present = [r for r in rows if r["support"] > 0]
    if not present:
        return None
    worst = min(present, key=lambda r: (r["f1"], r["class"]))
    best = max(present, key=lambda r: r["recall"])
    low = min(present, key=lambda r: r["recall"])
    return {
        "worst": worst["class"],
        "worst_f1": worst["f1"],
        "best_recall_class": best["class"],
        "best_recall": best["recall"],
        "worst_recall_class": low["class"],
        "worst_recall": low["recall"],
        "recall_spread": best["recall"] - low["recall"],
        "even": max(r["f1"] for r in present) - worst["f1"] < 1e-9,  # no class is weaker than another
    }


def confusion(p: SplitPredictions, normalise: bool = False) -> np.ndarray:
    """Rows are true classes, columns predicted, both in the run's class order; normalised by true class."""
    from sklearn import metrics as skm  # about a second to import: not at the CLI's start

    labels = np.arange(len(p.classes))
    return skm.confusion_matrix(p.labels, p.predicted, labels=labels, normalize="true" if normalise else None)


def cell_images(p: SplitPredictions, true: int, predicted: int) -> np.ndarray:
    """Ids of the images of one confusion cell, most confident first."""
    mask = (p.labels == true) & (p.predicted == predicted)
    order = np.argsort(-p.probs[mask, predicted], kind="stable")
    return p.ids[mask][order]


@dataclass(frozen=True)
class Loss:
    image_id: int
    true: str
    predicted: str
    probability: float  # of the predicted class
    true_probability: float
    loss: float


def top_losses(p: SplitPredictions, limit: int = 24, mistakes_only: bool = True) -> list[Loss]:
    """fastai's top losses: the images the model is most confidently wrong about first (label
    mistakes surface here), by cross-entropy of the true class."""
    if not len(p):
        return []
    rows = np.arange(len(p))
    true_p = p.probs[rows, p.labels]
    loss = -np.log(np.clip(true_p, 1e-7, 1.0))
    candidates = rows[p.predicted != p.labels] if mistakes_only else rows
    order = candidates[np.argsort(-loss[candidates], kind="stable")][:limit]
    return [
        Loss(
            int(p.ids[i]),
            p.classes[p.labels[i]],
            p.classes[p.predicted[i]],
            float(p.probs[i, p.predicted[i]]),
            float(true_p[i]),
            float(loss[i]),
        )
        for i in order
    ]


def calibration(p: SplitPredictions, bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Reliability diagram (per confidence bin: mean confidence, accuracy, count) and the expected
    calibration error: the count-weighted gap between confidence and accuracy."""
    confidence = p.probs.max(axis=1) if len(p) else np.zeros(0)
    correct = (p.predicted == p.labels).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    out = []
    ece = 0.0
    for b in range(bins):
        mask = index == b
        count = int(mask.sum())
        if count:
            conf, acc = float(confidence[mask].mean()), float(correct[mask].mean())
            ece += count / len(p) * abs(conf - acc)
            out.append({"low": edges[b], "high": edges[b + 1], "confidence": conf, "accuracy": acc, "count": count})
    return {"bins": out, "ece": float(ece)}


def binary_curves(p: SplitPredictions) -> dict[str, Any] | None:
    """ROC and precision-recall curves with their areas, for two classes (the second is positive)."""
    from sklearn import metrics as skm  # about a second to import: not at the CLI's start

    if len(p.classes) != 2 or len(set(p.labels.tolist())) < 2:
        return None
    score = p.probs[:, 1]
    fpr, tpr, _ = skm.roc_curve(p.labels, score)
    precision, recall, _ = skm.precision_recall_curve(p.labels, score)
    return {
        "positive": p.classes[1],
        "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "auc": float(skm.roc_auc_score(p.labels, score))},
        "pr": {
            "precision": precision.tolist(),
            "recall": recall.tolist(),
            "ap": float(skm.average_precision_score(p.labels, score)),
        },
    }


def report(p: SplitPredictions) -> dict[str, Any]:
    """Everything ``python -m core evaluate --json`` prints for one split."""
    rows = per_class(p)
    return {
        "split": p.split,
        **split_figures(p),
        "images": len(p),
        "labels": list(p.classes),
        "per_class": {r["class"]: {k: r[k] for k in ("precision", "recall", "f1", "support")} for r in rows},
        "confusion_matrix": confusion(p).tolist(),
        "fairness": fairness(rows),
    }


def compare(a: SplitPredictions, b: SplitPredictions) -> dict[str, Any]:
    """Two runs on the same split: headline and per-class figures side by side, with b - a."""
    fa, fb = split_figures(a), split_figures(b)
    head = {k: {"a": fa.get(k), "b": fb.get(k), "diff": fb[k] - fa[k]} for k in fa if k in fb and k != "images"}
    ra = {r["class"]: r for r in per_class(a)}
    rb = {r["class"]: r for r in per_class(b)}
    classes = [c for c in a.classes if c in rb]
    rows = [
        {"class": c, **{f"{m}_{side}": r[c][m] for side, r in (("a", ra), ("b", rb)) for m in ("recall", "f1")}}
        for c in classes
    ]
    for row in rows:
        row["f1_diff"] = row["f1_b"] - row["f1_a"]
    return {"headline": head, "per_class": rows}


def by_attribute(p: SplitPredictions, values: dict[int, str]) -> list[dict[str, Any]]:
    """Accuracy and macro F1 per value of an image attribute (``values``: image id -> value; images
    without the attribute form the group ""): whether the model works as well for every camera, site, ..."""
    from sklearn import metrics as skm  # about a second to import: not at the CLI's start

    groups: dict[str, list[int]] = {}
    for row, image_id in enumerate(p.ids.tolist()):
        groups.setdefault(values.get(image_id, ""), []).append(row)
    labels = np.arange(len(p.classes))
    out = []
    for value, rows in sorted(groups.items()):
        y, pred = p.labels[rows], p.predicted[rows]
        out.append(
            {
                "value": value,
                "images": len(rows),
                "accuracy": float(skm.accuracy_score(y, pred)),
                "macro_f1": float(skm.f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
            }
        )
    return out
