"""A team's set-up in a browser: the store in PostgreSQL, the workspace folder shared, and training handed
to another "node" through a launcher (a stand-in for ``sbatch``) that starts the worker in an environment
of its own: a bare environment with nothing but the database URL, the shared folder on its command line,
another working folder. The app queues the run from the Train page and follows it live to its end; the
Evaluate page then shows the run's own figures. No SQLite file is made anywhere in the workspace."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from core.datasets.ingest import import_archive
from core.jobs import launcher
from core.jobs.store import get_job, log_path
from core.runs import store as runs
from core.store.db import DATABASE_ENV
from core.store.workspace import Workspace
from tests.e2e.conftest import SHOTS, Server
from tests.e2e.test_flow import Person, flow_zip, wait

NODE = """
import os, subprocess, sys
args = sys.argv[1:]
command = args[args.index("--wrap") + 1]
node = {node!r}
os.makedirs(node, exist_ok=True)
# The other node: only the database URL and a PATH; its own home and working folder.
env = {{"PATH": os.environ["PATH"], "HOME": node, "{env}": os.environ["{env}"], "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": {root!r}}}
with open(os.path.join(node, "env.txt"), "w") as out:
    out.write(" ".join(sorted(env)))
subprocess.Popen(command, shell=True, cwd=node, env=env, start_new_session=True,
                 stdout=open(os.path.join(node, "worker.log"), "ab"), stderr=subprocess.STDOUT)
print("Submitted batch job 7")
"""


def test_a_run_queued_in_the_app_is_trained_on_another_node_that_knows_only_the_url_and_the_folder(
    browser, pg_url, tmp_path, monkeypatch
):
    shared = tmp_path / "shared"
    monkeypatch.setenv(DATABASE_ENV, pg_url)
    ws = Workspace.open(shared)
    import_archive(ws, flow_zip(tmp_path), name="颜色")
    node = tmp_path / "node"
    script = tmp_path / "sbatch.py"
    script.write_text(textwrap.dedent(NODE.format(node=str(node), env=DATABASE_ENV, root=str(launcher.ROOT))))
    launcher.set_template(ws, f'{sys.executable} {script} --job-name lt-{{job}} --output {{log}} --wrap "{{command}}"')

    server = Server(shared, tmp_path / "server.log").start()  # its environment carries the URL, as a team's does
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        me = Person(context.new_page(), server.url, SHOTS / "team", server.errors_log)
        me.page.goto(f"{server.url}/train")
        me.settle()
        me.text("Store: PostgreSQL")  # the sidebar says which store, without a password
        me.tiny_run_form(head_epochs=2, fine_tune_epochs=1)
        me.key("start", "button").click()
        me.text("started in the background")
        run = wait(lambda: runs.list_runs(ws, "颜色"), 30, "the run")[0]
        me.check("queued")
        # The app follows the worker on the other node live: its progress, then its end.
        done = wait(lambda: (r := runs.get_run(ws, run.id)).status in ("completed", "failed") and r, 600, "the run")
        assert done.status == "completed", (done.error, (node / "worker.log").read_text(errors="replace"))
        me.text("completed", timeout=60_000)
        me.check("completed")
        me.go("Evaluate")
        me.text("Confusion matrix")
        me.check("evaluate")
        context.close()
    finally:
        server.stop()
    # The worker ran on the "node", with nothing but the URL (its code on PYTHONPATH, as an installed copy).
    assert (node / "env.txt").read_text().split() == sorted(["PATH", "HOME", DATABASE_ENV, "TF_CPP_MIN_LOG_LEVEL",
                                                              "PYTHONPATH"])  # fmt: skip
    assert "Submitted batch job 7" in log_path(ws, done.job.id).read_text()
    assert get_job(ws, done.job.id).host is not None
    assert not list(Path(shared).rglob("*.sqlite3*")), "a SQLite file in the shared folder"
