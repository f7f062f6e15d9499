"""One model, one truth: the saved model is the run's best checkpoint, and every figure shown is its own."""

import numpy as np
import pytest

from core.evaluation import metrics
from core.runs import store as runs
from core.runs.folder import RunFolder
from core.runs.predictions import load_predictions, stored_splits
from core.store.workspace import Workspace
from core.training.inference import predict_splits
from core.training.model import load_run_model
from core.training.pipeline import load_training_data
from tests.builders import COLOURS, trained_colour_run

pytestmark = pytest.mark.slow  # trains real (tiny) models


@pytest.fixture(scope="module")
def spoilt_run(tmp_path_factory):
    """A run whose last epochs are worse than an earlier one: a good frozen phase, then fine-tuning at
    a learning rate that wrecks it."""
    root = tmp_path_factory.mktemp("best")
    ws = Workspace.open(root / "ws")
    run = trained_colour_run(
        ws, root, COLOURS, 14, "colours", backbone="mobilenet_v2_0.35", fine_tune_epochs=3, fine_tune_lr=3.0,
        schedule="constant", early_stopping=0, label_smoothing=0.0,
    )  # fmt: skip
    return ws, run


def test_the_saved_model_is_the_best_checkpoint_and_its_figures_are_the_runs(spoilt_run):
    ws, run = spoilt_run
    assert run.status == "completed", run.error
    epochs = runs.read_metrics(ws, run.id)
    best = min(epochs, key=lambda m: m["val_loss"])
    assert epochs[-1]["val_loss"] > best["val_loss"]  # the last epoch is worse than the best one
    assert run.best["epoch"] == best["epoch"] and run.best["val_objective"] == pytest.approx(best["val_loss"])
    # The saved model, loaded as evaluation and prediction load it, scores exactly the run's figure.
    val = load_predictions(ws, run.id, "val")
    model = load_run_model(ws, run.id)
    data = load_training_data(ws, "colours")
    assert val.ids.tolist() == data.val.ids and val.labels.tolist() == data.val.labels
    again = predict_splits(ws, run.id, ("val",), model=model)["val"]
    np.testing.assert_allclose(again.probs, val.probs, atol=1e-5)
    accuracy = metrics.split_figures(val)["accuracy"]
    assert accuracy == pytest.approx(run.best["val_accuracy"], abs=1e-6)
    assert run.final["val_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert run.final["val_log_loss"] == pytest.approx(
        run.best["val_objective"], rel=1e-3, abs=1e-5
    )  # no smoothing here


def test_predictions_are_stored_for_val_and_test_and_computed_on_first_use(spoilt_run):
    ws, run = spoilt_run
    assert stored_splits(ws, run.id) == ["val", "test"]
    test = load_predictions(ws, run.id, "test")
    assert test.probs.shape == (len(test), 3) and np.allclose(test.probs.sum(axis=1), 1, atol=1e-5)
    RunFolder.of(ws, run.id).predictions.unlink()  # as for a run saved before predictions were stored
    assert stored_splits(ws, run.id) == []
    seen = []
    found = predict_splits(ws, run.id, ("test", "train"), progress=lambda s, done, total: seen.append((s, done)))
    np.testing.assert_allclose(found["test"].probs, test.probs, atol=1e-5)
    assert stored_splits(ws, run.id) == ["train", "test"] and seen[-1][0] == "train"
