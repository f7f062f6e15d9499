"""Resumable uploads written straight to the workspace's staging folder, a chunk at a time.

The model is the tus 1.0 protocol's (tus.io; the browser side is the tus-js-client library): an upload
is created with its length, bytes are appended only at its current offset (after a dropped connection
or a closed tab the client asks for the offset and goes on from there), and a complete upload becomes
one file that the job it is handed to owns, exactly as an upload through Streamlit's own widget does
(``core.jobs.store.spool``). Memory stays at one chunk whatever the file's size.

Each upload belongs to an owner (the logged-in user, or one browser): every call names the owner, and an
upload of another owner is "unknown" to it (it can neither resume, read nor cancel it). The web route
(``ui.upload_route``) learns the owner from a grant the page signed (:func:`grant`), so a request with no
page behind it cannot upload. Limits are enforced while the bytes arrive: the upload's declared length
(at most :func:`max_upload_bytes`), and the free disk, checked when it is created; a write the disk
refuses removes the partial file. Partial uploads untouched for :data:`ABANDONED_AFTER_S` are removed
by :func:`sweep`.

Files: ``staging/uploads/<id>.part`` (the bytes so far: its size is the offset) and ``<id>.json`` (owner,
name, length, created).
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from core.errors import UploadError
from core.store.workspace import Workspace

GiB = 1024**3
MAX_BYTES_ENV = "LABELTUNE_MAX_UPLOAD_GB"
DEFAULT_MAX_BYTES = 50 * GiB
# Left free on the staging disk beyond an upload's own length (the import then writes the images).
DISK_RESERVE_BYTES = 1 * GiB
# A partial upload nobody wrote to for this long is removed (a day: long enough to resume after a night).
ABANDONED_AFTER_S = 24 * 3600
GRANT_TTL_S = 24 * 3600
SECRET_SETTING = "upload_secret"
_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Upload:
    id: str
    owner: str
    name: str
    length: int
    offset: int
    created: float

    @property
    def complete(self) -> bool:
        return self.offset == self.length


def uploads_dir(ws: Workspace) -> Path:
    path = ws.staging_dir / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def max_upload_bytes() -> int:
    raw = os.environ.get(MAX_BYTES_ENV)
    return int(float(raw) * GiB) if raw else DEFAULT_MAX_BYTES


def _secret(ws: Workspace) -> bytes:
    value = ws.get_setting(SECRET_SETTING)
    if not value:
        ws.set_setting(SECRET_SETTING, secrets.token_hex(32))
        value = ws.get_setting(SECRET_SETTING) or ""
    return bytes.fromhex(value)


def grant(ws: Workspace, owner: str, now: float | None = None) -> str:
    """A token that lets the browser upload as ``owner`` for a day: signed with the workspace's secret."""
    expires = int((now or time.time()) + GRANT_TTL_S)
    body = f"{owner}|{expires}"
    mac = hmac.new(_secret(ws), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}|{mac}"


def owner_of(ws: Workspace, token: str | None, now: float | None = None) -> str:
    """The owner a grant names, if it is genuine and unexpired; else :class:`UploadError`."""
    try:
        owner, expires, mac = (token or "").rsplit("|", 2)
    except ValueError:
        raise UploadError("err.upload_grant") from None
    expected = hmac.new(_secret(ws), f"{owner}|{expires}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, expected) or not expires.isdigit() or int(expires) < (now or time.time()):
        raise UploadError("err.upload_grant")
    return owner


def _paths(ws: Workspace, upload_id: str) -> tuple[Path, Path]:
    if not _ID.fullmatch(upload_id):
        raise UploadError("err.upload_unknown", upload=upload_id[:40])
    folder = uploads_dir(ws)
    return folder / f"{upload_id}.part", folder / f"{upload_id}.json"


def create(ws: Workspace, owner: str, name: str, length: int) -> Upload:
    """A new, empty upload of ``length`` bytes named ``name`` (the file's name as the user knows it)."""
    limit = max_upload_bytes()
    if length < 0 or length > limit:
        raise UploadError("err.upload_too_large", name=name, size=length, limit=limit)
    folder = uploads_dir(ws)
    free = shutil.disk_usage(folder).free
    if length + DISK_RESERVE_BYTES > free:
        raise UploadError("err.upload_no_space", name=name, size=length, free=free)
    upload = Upload(secrets.token_hex(16), owner, name, length, 0, time.time())
    part, meta = _paths(ws, upload.id)
    part.touch()
    tmp = meta.with_suffix(".tmp")
    tmp.write_text(json.dumps({k: v for k, v in asdict(upload).items() if k != "offset"}), encoding="utf-8")
    os.replace(tmp, meta)
    return upload


def get(ws: Workspace, owner: str, upload_id: str) -> Upload:
    """The upload, as ``owner`` sees it: another owner's is as unknown as one that never was."""
    part, meta = _paths(ws, upload_id)
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
        offset = part.stat().st_size
    except (OSError, ValueError):
        raise UploadError("err.upload_unknown", upload=upload_id) from None
    if not hmac.compare_digest(data["owner"], owner):
        raise UploadError("err.upload_unknown", upload=upload_id)
    return Upload(offset=offset, **data)


class Appender:
    """Writes one request's bytes at the upload's offset; never past its length, and on a full disk
    removes the partial upload (nothing half-written is left to resume into)."""

    def __init__(self, ws: Workspace, upload: Upload) -> None:
        self.ws, self.upload = ws, upload
        self.offset = upload.offset
        # unbuffered: a full disk fails the write it happens in, not a later flush
        self._file = open(_paths(ws, upload.id)[0], "r+b", buffering=0)  # noqa: SIM115  (closed by close())
        self._file.seek(self.offset)

    def write(self, chunk: bytes) -> None:
        if self.offset + len(chunk) > self.upload.length:
            self.close()
            cancel(self.ws, self.upload.owner, self.upload.id)
            raise UploadError("err.upload_too_large", name=self.upload.name, size=self.offset + len(chunk),
                               limit=self.upload.length)  # fmt: skip
        try:
            view = memoryview(chunk)
            while view:  # an unbuffered write may take part of it (a nearly full disk): the rest, or ENOSPC
                view = view[self._file.write(view) :]
        except OSError as exc:
            self.close()
            cancel(self.ws, self.upload.owner, self.upload.id)
            if exc.errno == errno.ENOSPC:
                raise UploadError("err.upload_no_space", name=self.upload.name, size=self.upload.length,
                                   free=0) from exc  # fmt: skip
            raise
        self.offset += len(chunk)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def appender(ws: Workspace, owner: str, upload_id: str, offset: int) -> Appender:
    """Ready to write at ``offset``, which must be the upload's own (else :class:`UploadError`, and the
    client asks for the offset again)."""
    upload = get(ws, owner, upload_id)
    if offset != upload.offset:
        raise UploadError("err.upload_offset", upload=upload_id, offset=offset, expected=upload.offset)
    return Appender(ws, upload)


def cancel(ws: Workspace, owner: str, upload_id: str) -> None:
    get(ws, owner, upload_id)
    for path in _paths(ws, upload_id):
        path.unlink(missing_ok=True)


def take(ws: Workspace, owner: str, upload_id: str) -> tuple[Path, str]:
    """A complete upload as one staging file (``upload-<id><suffix>``) for a job to own, and its name;
    the upload itself is gone."""
    upload = get(ws, owner, upload_id)
    if not upload.complete:
        raise UploadError("err.upload_incomplete", name=upload.name, offset=upload.offset, size=upload.length)
    part, meta = _paths(ws, upload_id)
    target = ws.staging_dir / f"upload-{upload.id}{Path(upload.name).suffix.lower()[:10]}"
    os.replace(part, target)
    meta.unlink(missing_ok=True)
    return target, upload.name


def unfinished(ws: Workspace, owner: str) -> list[Upload]:
    """The owner's partial uploads, newest first (the page offers to resume them)."""
    found = []
    for meta in uploads_dir(ws).glob("*.json"):
        try:
            upload = get(ws, owner, meta.stem)
        except UploadError:
            continue
        if not upload.complete:
            found.append(upload)
    return sorted(found, key=lambda u: -u.created)


def sweep(ws: Workspace, now: float | None = None, older_than_s: float = ABANDONED_AFTER_S) -> int:
    """Remove uploads nobody wrote to for ``older_than_s``; returns how many."""
    now = now or time.time()
    removed = 0
    for part in uploads_dir(ws).glob("*.part"):
        meta = part.with_suffix(".json")
        try:
            idle = now - max(part.stat().st_mtime, meta.stat().st_mtime if meta.exists() else 0)
        except OSError:
            continue
        if idle > older_than_s:
            part.unlink(missing_ok=True)
            meta.unlink(missing_ok=True)
            removed += 1
    return removed
