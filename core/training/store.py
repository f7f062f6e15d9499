"""The training stage's rows: the step timings the estimates measured on this machine, and the trials of a
settings search. Its SQL, in the store's words (``core.store.db``)."""

from __future__ import annotations

from typing import Any

from core.store.workspace import Workspace, utc_now


def step_timing(ws: Workspace, key: str) -> tuple[str, str] | None:
    """(timings as JSON, when measured) for one shape of run on one device, if measured."""
    with ws.connect() as conn:
        row = conn.execute("SELECT value_json, measured_at FROM step_timings WHERE key = ?", (key,)).fetchone()
    return (row[0], row[1]) if row else None


def save_step_timing(ws: Workspace, key: str, value_json: str) -> None:
    with ws.connect() as conn:
        conn.execute(
            "INSERT INTO step_timings VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE"
            " SET value_json = excluded.value_json, measured_at = excluded.measured_at",
            (key, value_json, utc_now()),
        )


def step_timings(ws: Workspace) -> list[tuple[str, str]]:
    """Every measured (key, timings as JSON)."""
    with ws.connect() as conn:
        return [(r[0], r[1]) for r in conn.execute("SELECT key, value_json FROM step_timings")]


def trial_rows(ws: Workspace, job_id: int) -> list[Any]:
    """The trials of tune job ``job_id`` so far, in order: number, params, state, validation log loss and
    accuracy, seconds, error (JSON texts as stored)."""
    with ws.connect() as conn:
        return conn.execute(
            "SELECT number, params_json, state, val_log_loss, val_accuracy, seconds, error_json FROM tune_trials"
            " WHERE job_id = ? ORDER BY number",
            (job_id,),
        ).fetchall()


def save_trial(ws: Workspace, values: tuple[Any, ...]) -> None:
    """One trial: job id, number, params (JSON), state, validation log loss and accuracy, seconds, error (JSON)."""
    with ws.connect() as conn:
        conn.execute("INSERT INTO tune_trials VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
