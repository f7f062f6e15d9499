"""The app's last line of defence. An error no page expected (a bug, a broken disk) stops the page with a
short reference the user can quote; its details (the traceback) go to the server's log and to the
workspace's ``logs/app-errors.log``, never to the browser (``client.showErrorDetails = "none"`` hides
Streamlit's own)."""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable
from typing import Any

import streamlit as st

from core.errors import LabelTuneError
from ui.common import show_error, t, workspace

LOG = logging.getLogger("labeltune.app")
_FILES: set[str] = set()  # the workspace logs this process already writes to


def _log_to_workspace() -> None:
    path = workspace().root / "logs" / "app-errors.log"
    if str(path) in _FILES:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    LOG.addHandler(handler)
    _FILES.add(str(path))


def report_unexpected(exc: Exception) -> str:
    """Log ``exc`` with its traceback under a new reference; show the reference. Returns it."""
    ref = secrets.token_hex(4)
    try:
        _log_to_workspace()
    except OSError:  # the workspace's disk may be what failed: the server's log still has it
        pass
    LOG.exception("unexpected error, reference %s", ref, exc_info=exc)
    st.error(t("app.unexpected", ref=ref), icon="🛑")
    return ref


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with the last line of defence: a typed error shows its own message, anything else a
    reference (for pages and fragments; Streamlit's stop and rerun are not exceptions of this kind)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LabelTuneError as exc:
            show_error(exc)
        except Exception as exc:  # noqa: BLE001 - the boundary: details to the log, a reference to the user
            report_unexpected(exc)
        return None

    return run
