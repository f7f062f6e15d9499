"""The best model in N minutes: the search runs as a job within its budget, its best settings become an
ordinary run, a failed trial is recorded and skipped, a kill or a cancel ends it without a run."""

import pytest

from core.datasets.ingest import import_archive
from core.errors import ConfigError
from core.i18n import render
from core.jobs.store import JobStatus, get_job
from core.runs import store as runs
from core.runs.predictions import load_predictions
from core.store.workspace import Workspace
from core.training import tune
from core.training.jobs import resume_here
from tests.builders import COLOURS, make_zip, separable
from tests.jobs import kill, run_job, wait_for


@pytest.fixture
def ws(tmp_path, offline):  # offline: the bundled MobileNetV2 weights
    ws = Workspace.open(tmp_path / "ws")
    import_archive(ws, make_zip(tmp_path / "c.zip", separable(COLOURS, 16)), name="颜色")
    return ws


def test_budgets_are_read_as_people_write_them():
    assert [tune.parse_budget(b) for b in ("10m", "90s", "1h", "1h30m", "5", "2.5m")] == [600, 90, 3600, 5400, 300, 150]
    for bad in ("", "ten minutes", "10x", "m"):
        with pytest.raises(ConfigError) as info:
            tune.parse_budget(bad)
        assert info.value.key == "err.tune_budget_format"
    with pytest.raises(ConfigError) as info:
        tune.TuneJob("d", 30)
    assert "60" in info.value.message("en") and "60" in info.value.message("zh")


@pytest.mark.slow
def test_a_tune_ends_within_its_budget_with_an_ordinary_run_and_survives_a_failed_trial(ws, monkeypatch):
    import dataclasses

    import numpy as np

    fit = tune.fit_head_on_vectors
    calls = []

    def second_trial_diverges(feats, *args, **kwargs):
        """The second trial's loss becomes NaN at its first batch (its vectors are NaN), so the real
        NaN guard stops it however slow the machine is (a fault in the score could come after the
        search's deadline had already cut the trial)."""
        calls.append(1)
        if len(calls) == 2:
            feats = dataclasses.replace(feats, train_x=np.full_like(feats.train_x, np.nan))
        return fit(feats, *args, **kwargs)

    monkeypatch.setattr(tune, "fit_head_on_vectors", second_trial_diverges)  # as the search calls it
    budget = 90.0
    job = run_job(ws, tune.TUNE, tune.TuneJob("颜色", budget, seed=1, attach_run=True))
    assert job.status is JobStatus.COMPLETED, job.error
    trials = tune.list_trials(ws, job.id)
    base = tune.base_config(ws, "颜色", 1)
    assert trials[0].params["lr"] == base.lr and trials[0].params["head_epochs"] == base.head_epochs  # the recipe first
    reasons = [t.error["key"] for t in trials if t.state == "failed"]
    assert reasons.count("err.tune_trial_nan") == 1 and set(reasons) <= {"err.tune_trial_nan", "err.tune_trial_cut"}
    assert "NaN" in render(next(t.error for t in trials if t.state == "failed"), "zh")
    # The recipe and the diverging trial at least: CI's slower machine had search time for these two only,
    # so a third trial is not asserted. Whatever follows the NaN is scored, but the last may be cut.
    assert len(trials) >= 2 and all(
        t.state == "complete" or t.number == len(trials) - 1 or t.error["key"] == "err.tune_trial_nan" for t in trials
    )  # fmt: skip
    best = min((t for t in trials if t.state == "complete"), key=lambda t: t.val_log_loss)
    assert job.result["best"] == best.params
    # The search kept to its share of the budget (a trial is cut at the search's deadline).
    assert sum(t.seconds for t in trials) <= tune.SEARCH_SHARE * budget + 5
    run = runs.get_run(ws, job.result["run"])
    assert run.status is JobStatus.QUEUED and run.config.max_minutes > 0
    assert {k: getattr(run.config, k) for k in tune.TUNED} == best.params
    # Within the budget by construction, not by this machine's clock (a shared machine's speed is no
    # test): the run may train only for what the search left of the budget, a limit the engine enforces
    # (test_engine's max_minutes test). BENCHMARKS.md times whole calls against the +10 % target.
    assert job.result["search_s"] + run.config.max_minutes * 60 <= budget
    run = resume_here(ws, run.id)  # what `python -m core tune` does next: train it here
    assert run.status is JobStatus.COMPLETED, run.error
    assert load_predictions(ws, run.id, "val").probs.shape == (len(load_predictions(ws, run.id, "val")), 3)


@pytest.mark.slow
def test_a_tune_killed_or_cancelled_mid_search_ends_so_and_makes_no_run(ws):
    """A worker killed mid-search (SIGKILL): the job is interrupted with the reason, its trials so far stay
    listed, and a new tune can start at once; a cancelled one ends cancelled. Neither makes a run."""
    from core.jobs import queue

    killed = tune.start_tune(ws, "颜色", 120)
    running = wait_for(ws, killed, lambda j: bool(tune.list_trials(ws, killed)) or not j.live)
    assert running.live, running
    kill(ws, running)
    assert tune.list_trials(ws, killed) and not runs.list_runs(ws)

    cancelled = tune.start_tune(ws, "颜色", 120)  # the same dataset: the killed one no longer holds it
    assert cancelled != killed
    wait_for(ws, cancelled, lambda j: bool(tune.list_trials(ws, cancelled)) or not j.live)
    queue.cancel(ws, cancelled)
    ended = wait_for(ws, cancelled, lambda j: not j.live, seconds=60)
    assert ended.status is JobStatus.CANCELLED and not runs.list_runs(ws)
    assert get_job(ws, cancelled).ended_at
