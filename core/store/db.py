"""The store's one connection type, over SQLite (one host: the default) or PostgreSQL (several hosts).

Every module speaks SQL through :class:`Connection` (``Workspace.connect``); what differs between the two
databases lives here and nowhere else:

* placeholders (``?`` in the store's SQL, ``%s`` for psycopg) and parameter values (booleans as 0/1);
* the write lock: SQLite's ``BEGIN IMMEDIATE`` (one writer for the whole file) and, on PostgreSQL, a
  transaction-scoped advisory lock (:data:`WRITE_LOCK_KEY`) taken by the same transactions, so the rules
  that span rows (at most N exclusive jobs running, one relabel after another, one migrator) hold alike;
* a consistent read over several statements (``BEGIN`` / ``REPEATABLE READ``);
* the few SQL fragments the two spell differently (:meth:`Connection.smaller`, :meth:`Connection.json_text`,
  :meth:`Connection.json_keys`, :meth:`Connection.json_has`, :meth:`Connection.json_with`, ``LIKE``'s case);
* the schema's types (:func:`schema_sql`): one description, the migrations, rendered for each;
* errors: what a caller may retry (:data:`TRANSIENT`) and what a user is told.

psycopg (3) is PostgreSQL's driver; ``psycopg_pool`` keeps a few connections open per process, because
the app opens a connection for each short read and a new PostgreSQL connection costs a process start on
the server. Values are bound client-side (``ClientCursor``), which keeps SQLite's loose typing of
literals (a text parameter compared with an integer column is cast by the server).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum, StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg.errors
import psycopg_pool

from core.errors import WorkspaceError

DATABASE_ENV = "LABELTUNE_DATABASE_URL"
# Milliseconds a writer waits for another writer (the training worker, the CLI, a backup program) before
# the database gives up; then a WorkspaceError says so.
BUSY_TIMEOUT_MS = 30_000
# The advisory lock PostgreSQL's write transactions take (one database per workspace): "LT" "W" in ASCII.
WRITE_LOCK_KEY = 0x4C5457
CONNECT_TIMEOUT_S = 10
POOL_MAX = 8  # connections one process keeps to PostgreSQL at most (the app's threads, a worker's heartbeat)


class Backend(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


# Errors a caller may retry later (a busy or unreachable database), whichever the backend.
TRANSIENT: tuple[type[BaseException], ...] = (sqlite3.OperationalError, psycopg.OperationalError)
# Any database error.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, psycopg.Error, psycopg_pool.PoolTimeout)


def backend_of(url: str | None) -> Backend:
    """The backend a database URL names: ``postgresql://`` (or ``postgres://``) is PostgreSQL; none is the
    workspace's SQLite file."""
    if not url:
        return Backend.SQLITE
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("postgresql", "postgres"):
        return Backend.POSTGRESQL
    if scheme == "sqlite":
        return Backend.SQLITE
    raise WorkspaceError("err.database_url", url=redact(url))


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``: what messages, logs and stored records show."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


class Row(tuple):
    """A PostgreSQL row that reads like ``sqlite3.Row``: by position, by column name, ``keys()``, ``dict(row)``."""

    _index: dict[str, int]

    def __new__(cls, values: Iterable[Any], index: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: Any) -> Any:
    index = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(values, index)


@lru_cache(maxsize=1024)
def _pg_sql(sql: str) -> str:
    """The store's SQL (``?`` placeholders) for psycopg: ``?`` → ``%s``, a literal ``%`` doubled; quoted
    text left as it is."""
    out, quote = [], ""
    for ch in sql:
        if quote:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


def _pg_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Enum):
        return value.value
    return value


def _pg_params(params: Sequence[Any] | None) -> list[Any]:
    return [_pg_value(v) for v in params or ()]


class Connection:
    """One connection in one transaction (``Workspace.connect``): ``execute`` and ``executemany`` with
    ``?`` placeholders; rows read by position or column name."""

    def __init__(self, raw: Any, backend: Backend) -> None:
        self.raw, self.backend = raw, backend

    @property
    def postgresql(self) -> bool:
        return self.backend is Backend.POSTGRESQL

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self.postgresql:
            return self.raw.execute(_pg_sql(sql), _pg_params(params))
        return self.raw.execute(sql, params)

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run an ``INSERT`` of one row; its new ``id``."""
        return int(self.execute(f"{sql} RETURNING id", params).fetchone()[0])

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        if self.postgresql:
            with self.raw.cursor() as cursor:
                cursor.executemany(_pg_sql(sql), [_pg_params(r) for r in rows])
        else:
            self.raw.executemany(sql, rows)

    def begin_write(self) -> None:
        """Take the store's write lock now, before the reads a change depends on: other writers wait until
        this transaction ends (``BUSY_TIMEOUT_MS`` at most)."""
        if self.postgresql:
            self.raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
        else:
            self.raw.execute("BEGIN IMMEDIATE")

    def begin_read(self) -> None:
        """Read what follows as of one moment (a snapshot), whatever commits meanwhile."""
        if self.postgresql:
            self.raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        else:
            self.raw.execute("BEGIN")

    def integrity_problems(self) -> list[str]:
        """What the database's own check finds wrong with its pages ([] when nothing): SQLite's
        ``quick_check``; PostgreSQL checks its pages itself as it reads them."""
        if self.postgresql:
            return []
        verdict = [row[0] for row in self.raw.execute("PRAGMA quick_check")]
        return [] if verdict == ["ok"] else verdict

    # SQL fragments spelled differently by the two databases.
    def smaller(self, a: str, b: str) -> str:
        """The smaller of two expressions (SQLite's two-argument ``MIN``, PostgreSQL's ``LEAST``)."""
        return f"{'LEAST' if self.postgresql else 'MIN'}({a}, {b})"

    def json_key(self, key: str) -> str:
        """The parameter :meth:`json_text` takes for top-level ``key`` (any characters: Chinese, dots, quotes)."""
        return key if self.postgresql else f"$.{json.dumps(key, ensure_ascii=False)}"

    def json_text(self, column: str) -> str:
        """The value at a top-level key (the parameter :meth:`json_key` gives) of a JSON text column, as
        text; NULL when absent."""
        if self.postgresql:
            return f"jsonb_extract_path_text(CAST({column} AS jsonb), ?)"
        return f"CAST(json_extract({column}, ?) AS TEXT)"

    def json_pairs(self, column: str) -> str:
        """The ``key`` and ``value`` of each member of a JSON object column, as a table ``j`` for ``FROM``."""
        if self.postgresql:
            return f"jsonb_each_text(CAST({column} AS jsonb)) AS j"
        return f"json_each({column}) AS j"

    def json_has(self, column: str, key: str) -> str:
        """True where the JSON array at top-level ``key`` of ``column`` holds the number given as a parameter."""
        if self.postgresql:
            return f"CAST({column} AS jsonb) -> '{key}' @> to_jsonb(CAST(? AS bigint))"
        return f"EXISTS (SELECT 1 FROM json_each({column}, '$.{key}') WHERE value = ?)"

    def json_with(self, column: str, key: str) -> str:
        """``column`` (a JSON object) with top-level ``key`` set to the text given as a parameter."""
        if self.postgresql:
            return f"CAST(jsonb_set(CAST({column} AS jsonb), '{{{key}}}', to_jsonb(CAST(? AS text))) AS TEXT)"
        return f"json_set({column}, '$.{key}', ?)"

    def limit(self, count: int) -> int | None:
        """``LIMIT ?``'s parameter for ``count`` rows, a negative count meaning all of them."""
        return None if count < 0 and self.postgresql else count

    @property
    def like(self) -> str:
        """``LIKE`` that ignores the case of ASCII letters, as SQLite's does."""
        return "ILIKE" if self.postgresql else "LIKE"


# --- schema -----------------------------------------------------------------------------------------

_PG_TYPES = (
    (re.compile(r"\bid INTEGER PRIMARY KEY\b"), "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),  # an archive's bytes, a pid: SQLite's integers are 64-bit
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),  # heartbeats are epoch seconds: float4 would round them
    # Migration 5's one JSON value built in SQL (PostgreSQL 15's json_object takes arrays, and gives json).
    (re.compile(r"\bjson_object\('run', id\)"), "CAST(json_build_object('run', id) AS TEXT)"),
)


def schema_sql(statement: str, backend: Backend) -> str:
    """A migration's statement (written in SQLite's words) for ``backend``."""
    if backend is Backend.SQLITE:
        return statement
    for pattern, replacement in _PG_TYPES:
        statement = pattern.sub(replacement, statement)
    return statement


def identity_tables(conn: Connection) -> list[str]:
    """Tables whose ``id`` PostgreSQL numbers itself (after a copy, their counters move past the copied ids)."""
    rows = conn.execute(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND column_name = 'id' AND is_identity = 'YES' ORDER BY table_name"
    ).fetchall()
    return [r[0] for r in rows]


def user_tables(conn: Connection) -> list[str]:
    """The names of the store's tables, in no particular order."""
    if conn.postgresql:
        query = ("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
                 " AND table_type = 'BASE TABLE'")  # fmt: skip
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    return [r[0] for r in conn.execute(query).fetchall()]


def columns(conn: Connection, table: str) -> list[str]:
    return [d[0] for d in conn.execute(f"SELECT * FROM {table} LIMIT 0").description]


# --- connections ------------------------------------------------------------------------------------

_pools: dict[tuple[str, int], psycopg_pool.ConnectionPool] = {}
_pools_lock = threading.Lock()


def _configure(raw: psycopg.Connection) -> None:
    raw.execute(f"SET lock_timeout = {BUSY_TIMEOUT_MS}")
    raw.commit()


def _pool(url: str) -> psycopg_pool.ConnectionPool:
    key = (url, os.getpid())  # a forked child opens its own
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            try:  # one direct connection first: a wrong URL or a server that is down says why at once
                psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S).close()
            except psycopg.Error as exc:
                raise _unreachable(url, exc) from exc
            pool = psycopg_pool.ConnectionPool(
                url,
                min_size=1,
                max_size=POOL_MAX,
                kwargs={
                    "cursor_factory": psycopg.ClientCursor,
                    "row_factory": _row_factory,
                    "connect_timeout": CONNECT_TIMEOUT_S,
                },
                configure=_configure,
                timeout=CONNECT_TIMEOUT_S,
                reconnect_timeout=CONNECT_TIMEOUT_S,
                open=False,
                name="labeltune",
            )
            _pools[key] = pool
    return pool


def _unreachable(url: str, exc: BaseException | None = None) -> WorkspaceError:
    """Why PostgreSQL at ``url`` cannot be reached: ``exc``'s first line, else asked directly (the pool
    only says it timed out)."""
    if exc is None:
        try:
            psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S).close()
            exc = TimeoutError("timed out waiting for a free connection")
        except psycopg.Error as error:
            exc = error
    text = str(exc).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    return WorkspaceError("err.database_unreachable", url=redact(url), reason=reason)


def close_pools() -> None:
    """Close this process's PostgreSQL connections (tests dropping a database; a worker at exit)."""
    with _pools_lock:
        pools = [p for (_, pid), p in _pools.items() if pid == os.getpid()]
        _pools.clear()
    for pool in pools:
        pool.close()


@contextmanager
def connect_postgresql(url: str, where: str) -> Iterator[Connection]:
    pool = _pool(url)
    try:
        if pool.closed:
            pool.open(wait=False)
        raw = pool.getconn()
    except (psycopg_pool.PoolTimeout, psycopg.OperationalError) as exc:
        raise _unreachable(url) from exc
    ok = False
    try:
        yield Connection(raw, Backend.POSTGRESQL)
        raw.commit()
        ok = True
    except psycopg.errors.DiskFull as exc:
        raise WorkspaceError("err.disk_full", path=where) from exc
    except psycopg.errors.LockNotAvailable as exc:
        raise WorkspaceError("err.workspace_locked", path=where, seconds=BUSY_TIMEOUT_MS // 1000) from exc
    finally:
        if not ok and not raw.closed:
            try:
                raw.rollback()
            except psycopg.Error:
                pass  # a connection the server closed: the pool replaces it
        pool.putconn(raw)


@contextmanager
def connect_sqlite(path: Path) -> Iterator[Connection]:
    """A connection in one transaction: committed on success, rolled back on error, always closed."""
    try:
        raw = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as exc:
        raise WorkspaceError("err.workspace_unusable", path=str(path), reason=str(exc)) from exc
    raw.row_factory = sqlite3.Row
    try:
        raw.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        raw.execute("PRAGMA journal_mode = WAL")
        raw.execute("PRAGMA foreign_keys = ON")
        with raw:
            yield Connection(raw, Backend.SQLITE)
    except sqlite3.OperationalError as exc:
        if "disk is full" in str(exc):  # SQLITE_FULL: the transaction was rolled back
            raise WorkspaceError("err.disk_full", path=str(path.parent)) from exc
        if "locked" in str(exc) or "busy" in str(exc):  # another program held it past the wait
            raise WorkspaceError("err.workspace_locked", path=str(path), seconds=BUSY_TIMEOUT_MS // 1000) from exc
        raise
    except sqlite3.DatabaseError as exc:
        if type(exc) is sqlite3.DatabaseError:  # "file is not a database", "disk image is malformed"
            raise WorkspaceError("err.workspace_damaged", path=str(path), reason=str(exc)) from exc
        raise
    finally:
        raw.close()
