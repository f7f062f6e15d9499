"""``model_card.md``: what the exported model is, what it was trained on, how well it does, and where
it should not be trusted. Written in English (the card travels with the model, to people who may not
read the app's language); class names and descriptions stay as the user wrote them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomllib

from core.datasets.catalog import load_dataset
from core.errors import DatasetError, EvaluationError
from core.evaluation.metrics import per_class, split_figures
from core.runs import store as runs
from core.runs.predictions import load_predictions
from core.store.workspace import Workspace, utc_now

ROOT = Path(__file__).resolve().parents[2]


def labeltune_version() -> str:
    try:
        return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _dataset_lines(ws: Workspace, run: runs.Run) -> list[str]:

    try:
        summary = load_dataset(ws, run.dataset_name)
    except DatasetError:
        return [f"Dataset **{run.dataset_name}**, version {run.dataset_version} (since deleted from the workspace)."]
    lines = [f"Dataset **{run.dataset_name}**, version {run.dataset_version}"
             + ("" if summary.version == run.dataset_version else f" (the workspace now holds version {summary.version})")
             + ".", "", "| Class | train | val | test |", "| --- | --- | --- | --- |"]  # fmt: skip
    for name in run.classes:
        counts = summary.by_split.get(name, {})
        lines.append(f"| {name} | {counts.get('train', 0)} | {counts.get('val', 0)} | {counts.get('test', 0)} |")
    return lines


def _evaluation_lines(ws: Workspace, run: runs.Run) -> list[str]:

    try:
        test = load_predictions(ws, run.id, "test")
    except EvaluationError:
        return ["No test split was evaluated for this run."]
    if not len(test):
        return ["The test split is empty: no held-out figures."]
    figures, rows = split_figures(test), per_class(test)
    worst = min(rows, key=lambda r: r["f1"])
    lines = [f"On the test split ({len(test)} images): accuracy **{_pct(figures['accuracy'])}**, "
             f"macro F1 **{figures['macro_f1']:.3f}**, log loss {figures['log_loss']:.3f}.", "",
             "| Class | precision | recall | F1 | images |", "| --- | --- | --- | --- | --- |"]  # fmt: skip
    lines += [
        f"| {r['class']} | {_pct(r['precision'])} | {_pct(r['recall'])} | {r['f1']:.3f} | {r['support']} |"
        for r in rows
    ]
    lines += ["", f"Weakest class: **{worst['class']}** (F1 {worst['f1']:.3f}, recall {_pct(worst['recall'])})."]
    return lines


def model_card(ws: Workspace, run: runs.Run, result: Any, labels: dict[str, Any], info: dict[str, Any]) -> str:
    config = run.config
    classes = "\n".join(
        f"- **{item['name']}**" + (f": {item['description']}" if item["description"] else " (no description)")
        for item in labels["labels"]
    )
    formats = "\n".join(
        f"| {c.variant} | {c.size_bytes / 1e6:.2f} MB | {c.latency_ms} ms | {_pct(c.accuracy)} | {_pct(c.agreement)} | "
        + ("yes" if c.offered else "no")
        + " |"
        for c in result.checked
    )
    settings = "\n".join(f"- {k}: `{v}`" for k, v in config.to_dict().items() if k != "dataset")
    return "\n".join(
        [
            f"# Model card: {run.label}",
            "",
            f"An image classifier made with LabelTune {labeltune_version()} on {utc_now()[:10]}: "
            f"{config.backbone} fine-tuned on {len(run.classes)} classes, input {info['input_size']} px RGB.",
            *(
                [
                    "",
                    "Predictions are flip-averaged (test-time augmentation): each image's probabilities are the "
                    "mean of the image's and its mirror image's, inside the model, at twice the cost.",
                ]
                if info.get("flip_averaged")
                else []
            ),
            "",
            "## Classes (标签说明)",
            "",
            classes,
            "",
            "## Training data",
            "",
            *_dataset_lines(ws, run),
            "",
            "## Training",
            "",
            f"Started from weights: `{run.weights_used or config.weights}`. Epochs run: {run.epochs_run}. "
            f"The exported model is the run's best checkpoint (lowest validation loss; validation accuracy "
            f"{_pct(run.best.get('val_accuracy'))}).",
            "",
            settings,
            "",
            "## Evaluation",
            "",
            *_evaluation_lines(ws, run),
            "",
            "## Formats",
            "",
            f"Checked on {result.images} test images against the app's model (accuracy {_pct(result.app_accuracy)}, "
            f"{result.app_latency_ms} ms an image in Keras on the exporting machine). Latency: one image, median "
            "of 10 calls, on the machine that exported (a phone or a GPU will differ). Agreement: the share of "
            "images whose top class matches the app's model. int8 takes and returns uint8 (scale and zero point "
            "in the file); float formats take float32 pixels 0-255.",
            "",
            "| Format | size | latency | test accuracy | agreement | offered |",
            "| --- | --- | --- | --- | --- | --- |",
            formats,
            "",
            "What each format needs installed (`predict.py` runs the first two):",
            "",
            *(f"- {fmt}: {what}" for fmt, what in info["needs"].items()),
            "",
            "## Intended use and limits",
            "",
            "- Use it for images like the training data: the same kind of subject, camera, framing and "
            "lighting. On images unlike them (other subjects, drawings, screenshots) it still answers one of "
            'its classes, confidently or not; it has no "none of these" class.',
            "- Its probabilities are not certainties. The app's *not sure* threshold flags predictions whose top "
            "probability is below it; pick the threshold on the validation split, and send low-confidence "
            "images to a person.",
            "- Classes with few training images (see the table above) are learned less well; the per-class "
            "recall shows where it misses most.",
            "- The SavedModel's image-bytes signature decodes with TensorFlow, which ignores EXIF orientation: "
            "rotate phone photos upright first (the app does at import).",
            "- Medical, legal or safety decisions need a validated process, not this card.",
            "",
        ]
    )
