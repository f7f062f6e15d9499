"""Uploads a job takes over: Streamlit's own uploader (:func:`job_uploader`, :func:`hand_over`) for small files,
and the streaming uploader: a Streamlit component (``ui/components/uploader``: tus-js-client, no build step)
that sends a file of any size to LabelTune's upload route (``ui.upload_route``) a chunk at a time, with
progress, speed, pause/resume and cancel, and resumes a cut-off upload when the same file is chosen again
in the same browser. The page then takes the finished file (:func:`take`) and hands it to its job exactly
as it hands over a file from Streamlit's own uploader: the job owns it."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import streamlit as st
import streamlit.components.v1 as components
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.uploaded_file_manager import UploadedFile
from streamlit.web.server.starlette.starlette_app_utils import decode_xsrf_token_string

from core.store import uploads
from ui.common import t, workspace
from ui.upload_route import PREFIX

FOLDER = Path(__file__).resolve().parent / "components" / "uploader"
CHUNK_BYTES = 16 * 1024 * 1024  # one PATCH each
_component = components.declare_component("labeltune_uploader", path=str(FOLDER))
TEXTS = ("choose", "pause", "resume", "cancel", "paused", "cancelled", "progress", "done", "failed", "resuming")


def upload_owner() -> str:
    """Whom an upload belongs to: the logged-in user; else this browser (Streamlit's XSRF token, the same
    in each tab of one browser and known to no other); else, with neither, the machine's one user."""
    if st.user.get("is_logged_in", False):
        return "user:" + str(st.user.get("email") or st.user.get("sub") or "")
    raw = st.context.cookies.get("_streamlit_xsrf")
    if raw:
        token, _ = decode_xsrf_token_string(raw)
        if token:
            return "browser:" + hashlib.sha256(token).hexdigest()[:32]
    return "local"


def _grant() -> str:
    """The page's grant for its owner, kept for the session while it has an hour left (stable arguments
    keep the component from drawing again)."""
    owner, held = upload_owner(), st.session_state.get("_upload_grant")
    if held and held[0] == owner and held[1] > time.time() + 3600:
        return held[2]
    token = uploads.grant(workspace(), owner)
    st.session_state["_upload_grant"] = (owner, time.time() + uploads.GRANT_TTL_S, token)
    return token


def streaming_uploader(key: str, accept: str = ".zip") -> dict[str, Any] | None:
    """The uploader; the finished upload it reports (``id``, ``name``, ``size``) until the page takes it."""
    round_ = st.session_state.get(f"{key}_round", 0)
    value = _component(
        grant=_grant(), endpoint=PREFIX, accept=accept, chunk_size=CHUNK_BYTES,
        texts={name: t(f"uploader.{name}") for name in TEXTS}, key=f"{key}_{round_}", default=None,
    )  # fmt: skip
    return value if isinstance(value, dict) and value.get("id") else None


def take(value: dict[str, Any], key: str) -> tuple[Path, str]:
    """The finished upload as one staging file for a job to own, and its name; the uploader starts over."""
    path, name = uploads.take(workspace(), upload_owner(), str(value["id"]))
    st.session_state[f"{key}_round"] = st.session_state.get(f"{key}_round", 0) + 1
    return path, name


def job_uploader(label: str, key: str, **options: Any) -> UploadedFile | None:
    """A file uploader whose upload a job takes over (:func:`hand_over`); it starts over empty after each."""
    turn = st.session_state.get(f"{key}_turn", 0)
    return st.file_uploader(label, key=f"{key}_{turn}" if turn else key, **options)


def hand_over(upload: UploadedFile, key: str) -> None:
    """The job started from ``upload`` has its own copy in the staging folder: let go of the upload.
    Streamlit keeps an upload's bytes in the server's memory until the user removes the file or the
    session ends; they are dropped now (as ``st.chat_input`` drops its files once read), the uploader
    ``key`` starts over empty, and the page runs again to show the job."""
    ctx = get_script_run_ctx()
    manager = getattr(ctx, "uploaded_file_mgr", None)
    if isinstance(manager, MemoryUploadedFileManager):
        manager.remove_file(session_id=ctx.session_id, file_id=upload.file_id)
    st.session_state[f"{key}_turn"] = st.session_state.get(f"{key}_turn", 0) + 1
    st.rerun()
