from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.runs import store as runs
from core.store.db import DATABASE_ENV, close_pools
from core.store.workspace import Workspace
from tests import postgres
from tests.builders import COLOURS, trained_colour_run

# Keep TensorFlow quiet and single-machine friendly in every test process.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# A light job's worker waits this long for the next light job (core.jobs.queue.warm_idle_s): long enough
# for a test's next job to find it, short enough that the workers of tests already done do not pile up.
os.environ.setdefault("LABELTUNE_WARM_IDLE_S", "15")


BACKENDS = ("sqlite", "postgresql")
# The store every other test's ``ws`` uses: sqlite, or postgresql to run them all on PostgreSQL.
DEFAULT_BACKEND = os.environ.get("LABELTUNE_TEST_BACKEND", "sqlite")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked ``both_backends`` (or in a module that is) runs once on each store: its ``ws`` is a
    SQLite workspace, then one whose store is a PostgreSQL database of its own."""
    if "ws" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_backends"):
        metafunc.parametrize("ws", BACKENDS, indirect=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """One throwaway PostgreSQL cluster per test process (its ``postgres`` database's URL); the tests that
    need it are skipped, with the reason, when it cannot start (failed instead under ``.ci/run``)."""
    try:
        with postgres.cluster() as url:
            yield url
    except postgres.Unavailable as exc:
        if os.environ.get(postgres.REQUIRE_ENV) == "1":
            pytest.fail(f"PostgreSQL is required here ({postgres.REQUIRE_ENV}=1) and could not start: {exc}")
        pytest.skip(f"PostgreSQL could not start: {exc}")


@pytest.fixture
def pg_url(postgres_server: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    url = postgres.create_database(postgres_server)
    yield url
    close_pools()
    postgres.drop_database(url)


def open_workspace(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A new workspace on the store the test is parametrized with. On PostgreSQL its URL is in the
    environment, as a team sets it: the command lines and worker processes a test starts find the database
    as they would on a cluster's node; and when the test ends, no SQLite file was made in the folder."""
    monkeypatch.delenv(DATABASE_ENV, raising=False)
    if getattr(request, "param", DEFAULT_BACKEND) == "postgresql":
        monkeypatch.setenv(DATABASE_ENV, request.getfixturevalue("pg_url"))
        request.addfinalizer(lambda: _no_sqlite_file(tmp_path / "ws"))
    return Workspace.open(tmp_path / "ws")


def _no_sqlite_file(root: Path) -> None:
    made = sorted(str(p.relative_to(root)) for p in root.rglob("*.sqlite3*"))
    assert not made, f"a PostgreSQL workspace made SQLite files: {made}"


@pytest.fixture
def ws(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A new workspace (see :func:`open_workspace`)."""
    return open_workspace(request, tmp_path, monkeypatch)


@pytest.fixture
def offline(tmp_path, monkeypatch) -> Path:
    """No network, whatever the machine: every proxy points at a port nothing listens on, and Keras looks
    for weights in an empty ``KERAS_HOME`` (returned). urllib builds its process-wide opener, proxies
    included, on its first request (Keras downloads through it): it is dropped afterwards, or every later
    request in this process (the browser tests' health checks) would go to the dead proxy."""
    keras_home = tmp_path / "keras"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))  # KerasHub's presets: none cached
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    urllib.request.install_opener(None)
    yield keras_home
    urllib.request.install_opener(None)


@pytest.fixture(scope="session")
def hub_presets(tmp_path_factory) -> dict[str, Path]:
    """Tiny KerasHub presets saved as local folders (``tests.presets``): ``dinov2`` (with 4 registers),
    ``siglip`` and ``clip`` (with their tokenizers), made once per test process."""
    from tests import presets

    root = tmp_path_factory.mktemp("presets")
    return {
        "dinov2": presets.dinov2(root / "dinov2", registers=4),
        "siglip": presets.siglip(root / "siglip"),
        "clip": presets.clip(root / "clip"),
    }


@pytest.fixture(scope="session")
def trained_once(tmp_path_factory) -> tuple[Path, str]:
    """One tiny trained run for the whole session (once per test process): dataset 颜色, the three
    ``COLOURS`` with 14 images each, VGG16 from scratch at 32 px (``tests.builders.trained_colour_run``).
    Tests take a copy (:func:`trained_copy`), never this workspace itself. Returns its folder and the run."""
    root = tmp_path_factory.mktemp("trained")
    run = trained_colour_run(Workspace.open(root / "ws"), root, COLOURS, 14, "颜色")
    return root / "ws", run.id


def copy_of_trained(trained_once: tuple[Path, str], target: Path) -> tuple[Workspace, runs.Run]:
    """The session's trained workspace copied to ``target`` (its files and its store, whole: nothing writes
    to it while it is copied), and its run."""
    source, run_id = trained_once
    shutil.copytree(source, target)
    ws = Workspace.open(target)
    return ws, runs.get_run(ws, run_id)


@pytest.fixture
def trained_copy(trained_once, tmp_path) -> tuple[Workspace, runs.Run]:
    """A test's own copy of the session's trained workspace: (workspace, run)."""
    return copy_of_trained(trained_once, tmp_path / "ws")


@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MiB disk (a tmpfs), where the machine lets a test mount one; skipped with the reason else."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)
