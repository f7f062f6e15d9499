"""Metrics from stored predictions, checked against hand-worked examples (no TensorFlow)."""

import numpy as np
import pytest

from core.evaluation import metrics
from core.runs.predictions import SplitPredictions


def preds(labels, probs, classes=("猫", "狗", "鸟")) -> SplitPredictions:
    probs = np.asarray(probs, dtype=np.float32)
    return SplitPredictions("test", list(classes), np.arange(100, 100 + len(labels)), np.asarray(labels), probs)


THREE = preds(
    [0, 0, 1, 1, 2, 2],
    [
        [0.9, 0.05, 0.05],  # right
        [0.2, 0.7, 0.1],  # wrong: 猫 taken for 狗, confidently
        [0.1, 0.8, 0.1],  # right
        [0.3, 0.6, 0.1],  # right
        [0.1, 0.1, 0.8],  # right
        [0.5, 0.1, 0.4],  # wrong: 鸟 taken for 猫
    ],
)


def test_headline_figures():
    f = metrics.split_figures(THREE)
    assert f["accuracy"] == pytest.approx(4 / 6)
    assert "top3_accuracy" not in f  # three classes: top-3 says nothing
    expected_loss = -np.mean(np.log([0.9, 0.2, 0.8, 0.6, 0.8, 0.4]))
    assert f["log_loss"] == pytest.approx(expected_loss, rel=1e-5)
    rows = metrics.per_class(THREE)
    assert [r["class"] for r in rows] == ["猫", "狗", "鸟"]
    # 猫: predicted for images 0 and 5, right once -> precision 0.5; recall 1/2
    assert rows[0]["precision"] == pytest.approx(0.5) and rows[0]["recall"] == pytest.approx(0.5)
    assert rows[1]["precision"] == pytest.approx(2 / 3) and rows[1]["recall"] == 1.0
    assert f["macro_f1"] == pytest.approx(np.mean([r["f1"] for r in rows]))


def test_confusion_rows_are_true_classes_and_cells_list_their_images():
    m = metrics.confusion(THREE)
    assert m.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert metrics.confusion(THREE, normalise=True)[0].tolist() == [0.5, 0.5, 0.0]
    assert metrics.cell_images(THREE, 0, 1).tolist() == [101]
    assert metrics.cell_images(THREE, 1, 1).tolist() == [102, 103]  # most confident first


def test_top_losses_put_the_most_confident_mistakes_first():
    losses = metrics.top_losses(THREE)
    assert [(x.image_id, x.true, x.predicted) for x in losses] == [(101, "猫", "狗"), (105, "鸟", "猫")]
    assert losses[0].probability == pytest.approx(0.7) and losses[0].true_probability == pytest.approx(0.2)


def test_calibration_of_a_perfectly_and_a_badly_calibrated_model():
    # 10 images at confidence 0.8, 8 right: perfectly calibrated in that bin.
    good = preds([0] * 8 + [1] * 2, [[0.8, 0.2, 0.0]] * 10)
    assert metrics.calibration(good)["ece"] == pytest.approx(0.0, abs=1e-6)
    # Always 0.95 sure, right half the time: ECE 0.45.
    bad = preds([0, 1] * 5, [[0.95, 0.05, 0.0]] * 10)
    result = metrics.calibration(bad)
    assert result["ece"] == pytest.approx(0.45, abs=1e-6)
    assert result["bins"] == [
        {"low": pytest.approx(0.9), "high": 1.0, "confidence": pytest.approx(0.95), "accuracy": 0.5, "count": 10}
    ]


def test_top3_accuracy_with_more_classes_and_binary_curves():
    rows = [[0.3, 0.4, 0.2, 0.1], [0.1, 0.6, 0.2, 0.1], [0.1, 0.1, 0.7, 0.1], [0.5, 0.3, 0.05, 0.15]]
    four = preds([0, 1, 2, 3], rows, classes=("a", "b", "c", "d"))
    figures = metrics.split_figures(four)
    assert figures["accuracy"] == 0.5 and figures["top3_accuracy"] == 1.0  # "a" second, "d" third
    two = preds([0, 0, 1, 1], [[0.9, 0.1], [0.4, 0.6], [0.35, 0.65], [0.2, 0.8]], classes=("ok", "bad"))
    curves = metrics.binary_curves(two)
    assert curves["positive"] == "bad" and curves["roc"]["auc"] == pytest.approx(1.0)
    assert curves["pr"]["ap"] == pytest.approx(1.0)
    assert metrics.binary_curves(THREE) is None


def test_fairness_names_the_worst_class_and_the_recall_spread():
    f = metrics.fairness(metrics.per_class(THREE))
    assert f["worst_recall"] == pytest.approx(0.5) and f["best_recall_class"] == "狗"
    assert f["recall_spread"] == pytest.approx(0.5)


def test_report_has_what_the_cli_promises_and_compare_diffs():
    out = metrics.report(THREE)
    assert {"split", "images", "accuracy", "macro_f1", "per_class", "labels", "confusion_matrix", "ece"} <= set(out)
    assert out["labels"] == ["猫", "狗", "鸟"] and out["per_class"]["狗"]["support"] == 2
    better = preds([0, 0, 1, 1, 2, 2], np.eye(3)[[0, 0, 1, 1, 2, 2]] * 0.85 + 0.05)
    diff = metrics.compare(THREE, better)
    assert diff["headline"]["accuracy"]["diff"] == pytest.approx(1 - 4 / 6)
    assert [r["class"] for r in diff["per_class"]] == ["猫", "狗", "鸟"]


def test_metrics_by_attribute_value():
    values = {100: "佳能", 101: "佳能", 102: "nikon", 103: "nikon", 104: "nikon"}  # 105 has none
    rows = metrics.by_attribute(THREE, values)
    assert [(r["value"], r["images"]) for r in rows] == [("", 1), ("nikon", 3), ("佳能", 2)]
    assert rows[2]["accuracy"] == 0.5 and rows[1]["accuracy"] == 1.0 and rows[0]["accuracy"] == 0.0
