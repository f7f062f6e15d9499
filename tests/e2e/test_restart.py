"""The Streamlit server restarted while a run trains: the worker goes on (its own session, not the
server's child), and the Train page of the new server reattaches to the run and follows it to the end."""

from __future__ import annotations

import time

from core.datasets.ingest import import_archive
from core.jobs.store import JobStatus
from core.runs import store as runs
from core.store.workspace import Workspace
from tests.builders import make_zip, separable
from tests.e2e.test_flow import SHOTS, Person, wait


def test_a_restarted_server_reattaches_to_the_run_that_trains(server, browser, tmp_path):
    ws = Workspace.open(server.workspace)
    colours = {"红色": (220, 30, 30), "蓝色": (30, 40, 220)}
    import_archive(ws, make_zip(tmp_path / "c.zip", separable(colours, 14)), name="颜色")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    me = Person(context.new_page(), server.url, SHOTS / "restart", server.errors_log)
    me.page.goto(f"{server.url}/train")
    me.page.get_by_role("heading", name="Train").first.wait_for(timeout=60_000)
    me.settle()
    me.tiny_run_form(head_epochs=3, fine_tune_epochs=6)
    me.key("start", "button").click()
    me.text("started in the background")
    me.check("started")
    run = wait(lambda: runs.list_runs(ws, "颜色"), 30, "the run")[0]
    wait(lambda: runs.get_run(ws, run.id).status is JobStatus.RUNNING, 120, "the run to start")

    server.stop()  # the server goes away mid-run ...
    time.sleep(3)
    assert runs.get_run(ws, run.id).live  # ... and the worker trains on
    context.close()

    server.start()  # ... and comes back, on a new port
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    me = Person(context.new_page(), server.url, SHOTS / "restart", server.errors_log)
    me.step = 1
    me.page.goto(f"{server.url}/train")
    me.page.get_by_role("heading", name="Train").first.wait_for(timeout=60_000)
    me.settle()
    assert runs.get_run(ws, run.id).live, "the run ended before the page could reattach: make it longer"
    me.text(run.id)  # the queue panel and the run panel show the live run
    me.check("reattached")
    done = wait(lambda: (r := runs.get_run(ws, run.id)).status in ("completed", "failed") and r, 600, "the run")
    assert done.status is JobStatus.COMPLETED, done.error
    me.text("completed", timeout=60_000)  # the page followed it to the end without a reload
    me.check("completed-after-restart")
    context.close()
