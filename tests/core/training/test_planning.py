"""Before a run starts: presets, the time estimate, the learning-rate suggestion, the augmentation preview
and the CLI verbs that make them in a subprocess."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli.main import build_parser
from core.cli.training import config_from_args
from core.datasets.ingest import import_archive
from core.jobs.store import JobStatus
from core.runs.config import TrainConfig, flag_name
from core.store.workspace import Workspace
from core.training import estimate, lr_sweeps, preview, step_timer
from core.training.jobs import ESTIMATE, LR_FIND, PREVIEW, ConfigJob
from core.training.plan import plan_run
from core.training.presets import PRESETS, matching_preset, preset_values
from tests.builders import make_zip, separable, tiny_config
from tests.jobs import run_job

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("plan")
    ws = Workspace.open(root / "ws")
    colours = {"红": (200, 60, 60), "蓝": (60, 60, 200), "绿": (60, 200, 60)}
    import_archive(ws, make_zip(root / "c.zip", separable(colours, 20)), name="颜色")
    return ws


def tiny(**overrides) -> TrainConfig:
    return tiny_config(
        **{**dict(dataset="颜色", batch_size=8, head_epochs=3, fine_tune_epochs=2, early_stopping=0), **overrides}
    )


def test_presets_are_valid_configs_and_recognised():
    for name in PRESETS:
        values = preset_values(name)
        config = TrainConfig(dataset="d", **values)
        assert matching_preset(values) == name and config.to_dict()["backbone"] == values["backbone"]
    quick = preset_values("quick")
    assert quick["backbone"].startswith("mobilenet_v2") and quick["fine_tune_epochs"] == 0 and quick["feature_cache"]
    assert preset_values("best")["fine_tune_epochs"] > preset_values("balanced")["fine_tune_epochs"]
    assert matching_preset({**preset_values("balanced"), "lr": 0.05}) is None  # edited: custom


def test_the_estimate_adds_up_the_planned_work():
    times = estimate.StepTimes(batch=8, build_s=1.0, head_trace_s=2.0, fine_trace_s=4.0, head_step_s=0.5,
                               fine_step_s=1.0, forward_s=0.01, save_s=0.2)  # fmt: skip
    counts = {"train": 80, "val": 20, "test": 10}
    plain = estimate.estimate(tiny(batch_size=16, feature_cache=False), counts, times)
    steps, scale = 5, 2  # 80 images / 16; batch 16 is twice the measured 8
    per_head_epoch = steps * 0.5 * scale + 20 * 0.01 + estimate.SAVES_PER_EPOCH * 0.2
    per_fine_epoch = steps * 1.0 * scale + 20 * 0.01 + estimate.SAVES_PER_EPOCH * 0.2
    assert plain.parts["head"] == pytest.approx(2.0 + 3 * per_head_epoch, abs=0.05)
    assert plain.parts["fine_tune"] == pytest.approx(4.0 + 2 * per_fine_epoch, abs=0.05)
    assert plain.total_s == pytest.approx(sum(plain.parts.values()))
    cached = estimate.estimate(tiny(batch_size=16, fine_tune_epochs=0), counts, times)
    # One pass of the base over train, val and test, then the head on vectors, predicted from them at the end.
    assert cached.parts["features"] == pytest.approx(110 * 0.01 + 1.0, abs=0.05) and cached.parts["fine_tune"] == 0
    assert cached.parts["finish"] < 0.2 < plain.parts["finish"]
    assert cached.total_s < plain.total_s  # the head on cached features is the quick path
    decoding = estimate.StepTimes(**{**times.to_dict(), "decode_s": 0.01})
    both = estimate.estimate(tiny(batch_size=16), counts, decoding)  # features, then fine-tuning on images
    assert both.parts["decode"] == pytest.approx((110 + 100 + 20 + 10) * 0.01, abs=0.05)  # pixels fit in memory
    every_epoch = estimate.estimate(tiny(batch_size=16, feature_cache=False, cache="none"), counts, decoding)
    assert every_epoch.parts["decode"] == pytest.approx((5 * 100 + 20 + 10) * 0.01, abs=0.05)  # 3 + 2 epochs
    longer = estimate.estimate(tiny(batch_size=16, fine_tune_epochs=4, feature_cache=False), counts, times)
    assert longer.parts["fine_tune"] == pytest.approx(4.0 + 4 * per_fine_epoch, abs=0.05)


def test_the_estimate_follows_the_engines_plan():
    """The estimate counts the path ``plan_run`` gives, the one the engine takes: no feature pass for a
    student (it learns from its teacher's view of each image) or under several replicas."""
    times = estimate.StepTimes(batch=8, build_s=1.0, head_trace_s=2.0, fine_trace_s=4.0, head_step_s=0.5,
                               fine_step_s=1.0, forward_s=0.01, save_s=0.2)  # fmt: skip
    counts = {"train": 80, "val": 20, "test": 10}
    alone = tiny(batch_size=16)
    assert plan_run(alone).head_on_features and estimate.estimate(alone, counts, times, replicas=1).parts["features"]
    student = tiny(batch_size=16, teacher="20261201-000000-abcd")
    mirrored = estimate.estimate(alone, counts, times, replicas=2)
    for config, replicas in ((student, 1), (alone, 2)):
        assert not plan_run(config, replicas).head_on_features
        found = estimate.estimate(config, counts, times, replicas=replicas)
        assert found.parts["features"] == 0 and found.parts["head"] > 3 * 5 * 0.5 * 2
    assert mirrored.total_s > estimate.estimate(alone, counts, times, replicas=1).total_s


def test_the_suggested_rate_is_where_the_loss_falls_fastest_not_the_noisy_start():
    rates = list(np.logspace(-6, 0, 60))
    losses = [2.0 - 1.5 / (1 + np.exp(-(np.log10(r) + 3) * 3)) for r in rates]  # steepest at 1e-3
    losses[0], losses[1] = 2.6, 2.1  # a few noisy first batches
    assert lr_sweeps.suggest(rates, losses) == pytest.approx(1e-3, rel=0.3)


def cli_flags(config: TrainConfig) -> list[str]:
    """``config`` as ``train`` flags: each setting's flag and value."""
    out = ["--dataset", config.dataset]
    for f in TrainConfig.user_fields():
        value = getattr(config, f.name)
        out += [flag_name(f), ("on" if value else "off") if isinstance(value, bool) else str(value)]
    return out


def test_config_flags_round_trip_through_the_cli_parser(ws):
    config = tiny(augment="strong", feature_cache=False, jit_compile="on", lr=3e-4, unfreeze="20",
                  weight_decay=1e-4, max_minutes=2.5)  # fmt: skip
    args = build_parser().parse_args(["train", *cli_flags(config)])
    assert config_from_args(args, ws) == config


def test_a_failing_planning_job_says_why_in_the_readers_language(ws):
    from core.i18n import render

    job = run_job(ws, ESTIMATE, ConfigJob(tiny(dataset="nope")))
    assert job.status is JobStatus.FAILED and job.error["key"] == "err.dataset_unknown"
    assert "nope" in render(job.error, "en") and "nope" in render(job.error, "zh")


@pytest.mark.slow
def test_estimates_are_of_the_order_of_the_real_run(ws):
    """Two tiny configurations, timed on this machine then trained: the estimate within a factor of 2.5
    of the run's time, which a missing phase, a wrong step count or an epoch counted twice would break.
    The ±30 % target is a timing figure and lives in bench/bench_estimate.py (BENCHMARKS.md): here the
    timing and the run may meet different neighbours (under `-n 2` the other process's test; a ratio of
    1.7 was seen in CI's setup)."""
    from core.training.jobs import train_here
    from core.training.pipeline import load_training_data

    data = load_training_data(ws, "颜色")
    counts = data.counts()
    for config in (tiny(feature_cache=False), tiny(backbone="mobilenet_v2_0.35", image_size=64)):
        guess = step_timer.measure_and_store(ws, config, data)
        assert estimate.cached_estimate(ws, config, counts).total_s == pytest.approx(guess.total_s)
        run = train_here(ws, config)
        assert run.status == "completed"
        assert 0.4 <= run.train_seconds / guess.total_s <= 2.5, (config.backbone, run.train_seconds, guess.total_s)


@pytest.mark.slow
def test_preview_and_lr_sweep_are_made_by_jobs_and_cached(ws):
    config = tiny(augment="strong")
    shown = run_job(ws, PREVIEW, ConfigJob(config)).result
    path = Path(shown["path"])
    assert path == preview.preview_path(ws, config) and path.exists()
    with Image.open(path) as img:
        grid = np.asarray(img)
    assert grid.shape[0] == 3 * (32 + 4)  # one row per class (three here), original plus four views
    row = grid[:32]
    views = [row[:, x : x + 32] for x in (44, 80, 116, 152)]
    assert any(not np.array_equal(views[0], v) for v in views[1:])  # augmented differently
    swept = run_job(ws, LR_FIND, ConfigJob(config, steps=40)).result
    cached = lr_sweeps.cached_sweep(ws, config)
    assert cached is not None and cached.suggestion == swept["suggestion"]
    assert cached.rates[0] <= cached.suggestion <= cached.rates[-1] and len(cached.rates) >= 10
    out = subprocess.run(
        [sys.executable, "-m", "core", "estimate", *cli_flags(config), "--workspace", str(ws.root),
         "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)["total_s"] > 0
