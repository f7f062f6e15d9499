"""Knowledge distillation: a student that learns from a teacher follows the teacher where the labels have
since changed; a student of the labels alone does not."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.datasets.editing import relabel
from core.datasets.ingest import import_archive
from core.errors import TrainingError
from core.runs import store as runs
from core.runs.config import TrainConfig
from core.store.workspace import Workspace
from core.training.distill import soften
from core.training.jobs import create_run, train_here
from core.training.pipeline import load_training_data
from tests.builders import jpeg, make_zip
from tests.jobs import cancelled

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow

# Purple images sit in the "red" class when the teacher trains, and are relabelled "blue" afterwards:
# the teacher says red for them, the labels now say blue, and a colour is easy to learn either way.
GROUPS = {"red": [(200, 60, 60)], "blue": [(60, 60, 200)], "green": [(60, 200, 60)]}
PURPLE = (150, 40, 210)


def test_softening_keeps_the_order_and_flattens():
    probs = np.array([[0.7, 0.2, 0.1]], dtype=np.float32)
    soft = soften(probs, 4.0)
    assert soft.sum() == pytest.approx(1.0) and list(soft[0].argsort()) == [2, 1, 0]
    assert soft[0, 0] < 0.7 and soft[0, 2] > 0.1
    assert soften(probs, 1.0) == pytest.approx(probs, rel=1e-5)


@pytest.fixture(scope="module")
def relabelled(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    ws = Workspace.open(root / "ws")
    entries = []
    for name, colours in GROUPS.items():
        for i in range(12):
            entries.append((f"{name}/{name}_{i}.jpg", jpeg(colours[0], (40, 40 + i))))
    entries += [(f"red/purple_{i}.jpg", jpeg(PURPLE, (40, 40 + i))) for i in range(12)]
    import_archive(ws, make_zip(root / "c.zip", entries), name="c")
    base = dict(dataset="c", backbone="vgg16", weights="none", image_size=32, batch_size=8, head_epochs=6,
                fine_tune_epochs=0, augment="none", lr=0.01, early_stopping=0, seed=3)  # fmt: skip
    teacher = train_here(ws, TrainConfig(**base))
    assert teacher.status == "completed", teacher.error
    with ws.connect() as conn:
        purple = [r[0] for r in conn.execute("SELECT id FROM images WHERE original_name LIKE '%purple%'")]
    relabel(ws, "c", purple, "blue")
    return ws, teacher, base, purple


def _agreement_with_teacher(ws, teacher_id, student_id):
    from core.training.inference import predict_split
    from core.training.model import load_run_model

    data = load_training_data(ws, "c")
    config = runs.get_run(ws, student_id).config
    teacher = predict_split(load_run_model(ws, teacher_id), data.train, config).argmax(1)
    student = predict_split(load_run_model(ws, student_id), data.train, config).argmax(1)
    return float((teacher == student).mean())


def test_a_distilled_student_agrees_with_its_teacher_more_than_a_student_of_the_labels(relabelled):
    ws, teacher, base, _ = relabelled
    plain = train_here(ws, TrainConfig(**base))
    student = train_here(ws, TrainConfig(**{**base, "teacher": teacher.id, "distill_alpha": 0.1, "temperature": 2.0}))
    assert plain.status == student.status == "completed", (plain.error, student.error)
    assert student.device and runs.read_metrics(ws, student.id)  # trained and reported like any run
    distilled, labels_only = (_agreement_with_teacher(ws, teacher.id, r.id) for r in (student, plain))
    assert distilled > labels_only + 0.1, (distilled, labels_only)


def test_a_student_trains_its_head_on_images_as_its_estimate_says(relabelled):
    """The engine and the estimate follow one plan: a student's head phase runs on images (the vectors do
    not carry the teacher's view of each image), although the feature cache is on; without a teacher the
    same settings take the feature path, in the engine and in the estimate alike."""
    from core.training import estimate, features
    from core.training.plan import plan_run

    ws, teacher, base, _ = relabelled
    student_config = TrainConfig(**{**base, "head_epochs": 1, "teacher": teacher.id})
    alone_config = TrainConfig(**{**base, "head_epochs": 1})
    assert student_config.feature_cache and alone_config.feature_cache
    data = load_training_data(ws, "c")
    cache = features.cache_path(ws, features.cache_key(alone_config, data), data.dataset_id)
    cache.unlink(missing_ok=True)
    times = estimate.StepTimes(batch=8, build_s=1.0, head_trace_s=2.0, fine_trace_s=4.0, head_step_s=0.5,
                               fine_step_s=1.0, forward_s=0.01, save_s=0.2)  # fmt: skip
    for config, on_features in ((student_config, False), (alone_config, True)):
        assert plan_run(config).head_on_features is on_features
        guess = estimate.estimate(config, data.counts(), times, replicas=1)
        assert (guess.parts["features"] > 0) is on_features
        run = train_here(ws, config)
        assert run.status == "completed", run.error
        assert cache.exists() is on_features  # the engine extracted the vectors only on the feature path


def test_a_teacher_must_be_a_run_of_the_same_dataset_with_a_model(relabelled):
    ws, teacher, base, _ = relabelled
    with pytest.raises(TrainingError) as info:
        create_run(ws, TrainConfig(**{**base, "teacher": "20990101-000000-beef"}))
    assert info.value.key == "err.run_unknown"
    queued = cancelled(ws, create_run(ws, TrainConfig(**base), attached=True))  # no model yet
    with pytest.raises(TrainingError) as info:
        create_run(ws, TrainConfig(**{**base, "teacher": queued}))
    assert info.value.key == "err.teacher_unusable"


def test_the_distill_verb_reports_student_and_teacher(relabelled):
    ws, teacher, _, _ = relabelled
    proc = subprocess.run(
        [sys.executable, "-m", "core", "distill", teacher.id, "--student", "vgg16", "--weights", "none",
         "--image-size", "32", "--head-epochs", "2", "--workspace", str(ws.root), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    payload = json.loads(proc.stdout)
    assert payload["status"] == "completed" and payload["teacher"]["run"] == teacher.id
    for role in ("teacher", "student"):
        assert payload[role]["size_mb"] > 0 and payload[role]["latency_ms"] > 0 and payload[role]["params"] > 0
    assert runs.get_run(ws, payload["run"]).config.teacher == teacher.id


def test_the_export_section_shows_teacher_and_student_formats_in_one_table(relabelled, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from core.export.config import ExportConfig
    from core.export.jobs import EXPORT
    from core.i18n import tr
    from tests.jobs import run_job

    ws, teacher, base, _ = relabelled
    student = train_here(ws, TrainConfig(**{**base, "head_epochs": 2, "teacher": teacher.id}))
    for run in (teacher, student):
        assert run_job(ws, EXPORT, ExportConfig(run.id, ("keras",))).status == "completed"
    monkeypatch.setenv("LABELTUNE_HOME", str(ws.root))
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    at.switch_page("pages/evaluate.py").run()
    at.selectbox(key="eval_run").set_value(student.id).run()
    assert not at.exception, [e.value for e in at.exception]
    table = next(d.value for d in at.dataframe if tr("exp.col_run", "en") in d.value.columns)
    names = " ".join(table[tr("exp.col_run", "en")])
    assert teacher.id in names and student.id in names
    assert tr("exp.teacher", "en") in names and tr("exp.student", "en") in names
