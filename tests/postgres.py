"""A throwaway PostgreSQL cluster for the tests and benchmarks: ``initdb`` and ``pg_ctl`` in a temporary
folder, on a free loopback port, as an unprivileged user (``postgres`` or ``nobody`` when run as root:
PostgreSQL refuses to run as root). Each test then gets a database of its own.

``LABELTUNE_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) turns "cannot start, skipped" into a failure.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

REQUIRE_ENV = "LABELTUNE_REQUIRE_POSTGRES"
SUPERUSER = "labeltune"


class Unavailable(RuntimeError):
    """PostgreSQL's programs are missing or the cluster would not start (the reason is the message)."""


def _program(name: str) -> str:
    installed = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")  # Debian keeps them off PATH, one folder a version
    newest = max(installed, key=lambda p: float(Path(p).parts[-3]), default=None)
    found = shutil.which(name) or newest
    if not found:
        raise Unavailable(f"{name} not found (Debian: apt-get install postgresql)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user() -> tuple[list[str], int | None, int | None]:
    """The command prefix and ids to run the server's programs unprivileged."""
    if os.geteuid() != 0:
        return [], None, None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return ["runuser", "-u", name, "--"], entry.pw_uid, entry.pw_gid
    raise Unavailable("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")


@contextmanager
def cluster() -> Iterator[str]:
    """A running cluster, stopped and removed afterwards; yields the URL of its ``postgres`` database."""
    initdb, pg_ctl = _program("initdb"), _program("pg_ctl")
    prefix, uid, gid = _as_user()
    folder = Path(tempfile.mkdtemp(prefix="labeltune-pg-"))
    data, port = folder / "data", _free_port()
    if uid is not None:
        os.chown(folder, uid, gid)
    options = (
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
        " -c full_page_writes=off -c max_connections=300"
    )
    try:
        for command in (
            [initdb, "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-locale"],
            [pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "server.log"), "-w", "-t", "60", "start"],
        ):
            done = subprocess.run(prefix + command, capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                log = (folder / "server.log").read_text(errors="replace") if (folder / "server.log").exists() else ""
                raise Unavailable(
                    f"{Path(command[0]).name} failed: {(done.stderr or done.stdout or log).strip()[-400:]}"
                )
    except (OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise Unavailable(str(exc)) from exc
    except Unavailable:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    try:
        yield f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            prefix + [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True, timeout=60
        )
        shutil.rmtree(folder, ignore_errors=True)


def create_database(server_url: str) -> str:
    """A new empty database on the cluster; its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    server_url, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
