"""The predictions job (core.evaluation.jobs) through real worker processes: killed, cancelled, completed."""

import pytest

from core.evaluation.jobs import start_predictions
from core.runs.folder import RunFolder
from core.runs.predictions import load_predictions, stored_splits
from core.store.workspace import Workspace
from tests.builders import trained_colour_run
from tests.jobs import lifecycle

pytestmark = pytest.mark.slow  # a trained model, worker processes with TensorFlow


def test_predictions_of_a_split_as_a_job(tmp_path, monkeypatch):
    ws = Workspace.open(tmp_path / "ws")
    run = trained_colour_run(ws, tmp_path, {"红": (200, 60, 60), "蓝": (60, 60, 200)}, 30, "c")
    RunFolder.of(ws, run.id).predictions.unlink()  # as for a run saved before predictions were stored
    splits = [("train",), ("train", "test"), ("val", "test")]  # the train split: more than one batch
    done = lifecycle(ws, lambda n: start_predictions(ws, run.id, splits[n]), monkeypatch)
    assert done.result["splits"] == {"val": 8, "test": 8} and done.run_id == run.id
    assert stored_splits(ws, run.id) == ["val", "test"]  # the killed and the cancelled jobs stored nothing
    assert load_predictions(ws, run.id, "val").accuracy == pytest.approx(run.final["val_accuracy"])
