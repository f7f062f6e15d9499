"""LabelTune's own upload route, served by ``streamlit run`` beside the app (``streamlit.starlette.App``):
uploads of any size streamed to the staging folder a chunk at a time, resumable, in the tus 1.0 protocol
(core, creation and termination: https://tus.io/protocols/resumable-upload), which the browser side speaks
with the tus-js-client library. The bytes go to :mod:`core.store.uploads`; this module only speaks HTTP.

Every request needs the grant the page signed for its owner (``X-LabelTune-Grant``: a page drawn only
after the login, when one is configured, so no upload without a logged-in session) and, for those that
change something, Streamlit's XSRF token (``X-Xsrftoken`` against its cookie, as Streamlit's own upload
endpoint checks it). File writes run in a worker thread: the server's event loop (the app's websockets)
never waits on the disk.
"""

from __future__ import annotations

import base64
import functools
from typing import Any

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from streamlit.web.server.server_util import is_xsrf_enabled
from streamlit.web.server.starlette.starlette_app_utils import validate_xsrf_token
from streamlit.web.server.starlette.starlette_server_config import XSRF_COOKIE_NAME

from core.errors import UploadError
from core.store import uploads
from core.store.workspace import Workspace
from ui.common import workspace_args

PREFIX = "/labeltune/uploads"
GRANT_HEADER = "X-LabelTune-Grant"
TUS = {"Tus-Resumable": "1.0.0"}


@functools.cache
def _workspace() -> Workspace:
    """The app's workspace, opened once per server process."""
    return Workspace.open(*workspace_args())


def _xsrf_ok(request: Request) -> bool:
    """Streamlit's own double-submit check (its upload endpoint's): the header against the cookie."""
    if not is_xsrf_enabled():
        return True
    return validate_xsrf_token(request.headers.get("X-Xsrftoken"), request.cookies.get(XSRF_COOKIE_NAME))


def _answer(status: int, **headers: Any) -> Response:
    return Response(status_code=status, headers={**TUS, "Cache-Control": "no-store",
                                                  **{k.replace("_", "-"): str(v) for k, v in headers.items()}})  # fmt: skip


def _refused(exc: UploadError) -> Response:
    return Response(exc.message("en"), status_code=exc.status, headers=TUS)


async def _guarded(request: Request, handler: Any) -> Response:
    """The checks every request passes (XSRF for changes, the grant for all), then ``handler(ws, owner)``."""
    if request.method not in ("HEAD", "GET", "OPTIONS") and not _xsrf_ok(request):
        return Response("XSRF token missing or invalid", status_code=403, headers=TUS)
    ws = _workspace()
    try:
        owner = uploads.owner_of(ws, request.headers.get(GRANT_HEADER))
        return await handler(ws, owner)
    except UploadError as exc:
        return _refused(exc)


async def options(request: Request) -> Response:
    return _answer(204, Tus_Version="1.0.0", Tus_Extension="creation,termination",
                   Tus_Max_Size=uploads.max_upload_bytes())  # fmt: skip


async def create(request: Request) -> Response:
    async def handle(ws: Workspace, owner: str) -> Response:
        try:
            length = int(request.headers["Upload-Length"])
        except (KeyError, ValueError):
            return Response("Upload-Length required", status_code=400, headers=TUS)
        await anyio.to_thread.run_sync(uploads.sweep, ws)  # abandoned partial uploads go first
        upload = uploads.create(ws, owner, _file_name(request.headers.get("Upload-Metadata", "")), length)
        return _answer(201, Location=f"{PREFIX}/{upload.id}", Upload_Offset=0)

    return await _guarded(request, handle)


async def head(request: Request) -> Response:
    async def handle(ws: Workspace, owner: str) -> Response:
        upload = uploads.get(ws, owner, request.path_params["upload_id"])
        return _answer(200, Upload_Offset=upload.offset, Upload_Length=upload.length)

    return await _guarded(request, handle)


async def patch(request: Request) -> Response:
    async def handle(ws: Workspace, owner: str) -> Response:
        if request.headers.get("Content-Type") != "application/offset+octet-stream":
            return Response("Content-Type must be application/offset+octet-stream", status_code=415, headers=TUS)
        try:
            offset = int(request.headers["Upload-Offset"])
        except (KeyError, ValueError):
            return Response("Upload-Offset required", status_code=400, headers=TUS)
        writer = uploads.appender(ws, owner, request.path_params["upload_id"], offset)
        try:
            async for chunk in request.stream():
                if chunk:
                    await anyio.to_thread.run_sync(writer.write, chunk)
        except ClientDisconnect:  # the bytes written so far stay: the client resumes from them
            pass
        finally:
            writer.close()
        return _answer(204, Upload_Offset=writer.offset)

    return await _guarded(request, handle)


async def delete(request: Request) -> Response:
    async def handle(ws: Workspace, owner: str) -> Response:
        uploads.cancel(ws, owner, request.path_params["upload_id"])
        return _answer(204)

    return await _guarded(request, handle)


def _file_name(metadata: str) -> str:
    """The ``filename`` of tus' Upload-Metadata (``key base64value`` pairs, comma-separated)."""
    for pair in metadata.split(","):
        key, _, value = pair.strip().partition(" ")
        if key == "filename" and value:
            try:
                return base64.b64decode(value).decode("utf-8")[:255] or "upload"
            except ValueError:
                return "upload"
    return "upload"


def routes() -> list[Route]:
    return [
        Route(PREFIX, create, methods=["POST"]),
        Route(PREFIX, options, methods=["OPTIONS"]),
        Route(PREFIX + "/{upload_id}", head, methods=["HEAD"]),
        Route(PREFIX + "/{upload_id}", patch, methods=["PATCH"]),
        Route(PREFIX + "/{upload_id}", delete, methods=["DELETE"]),
    ]
