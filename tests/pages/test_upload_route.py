"""The upload route (tus 1.0: create, offset, append, cancel) over real HTTP handling (Starlette's test
client) and real files in a workspace's staging folder: chunks in order and out of order, a resume
from the stored offset, the length enforced mid-stream with nothing left behind, XSRF and the page's
grant required, another owner refused, a full disk leaving no partial file, abandoned uploads swept."""

import base64
import errno
import os
import time
from types import SimpleNamespace

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from streamlit.web.server.starlette.starlette_app_utils import generate_xsrf_token_string
from streamlit.web.server.starlette.starlette_server_config import XSRF_COOKIE_NAME

from core.store import uploads
from core.store.workspace import Workspace
from ui import upload_route
from ui.upload_route import GRANT_HEADER, PREFIX

CONTENT = bytes(range(256)) * 4096
MIB = len(CONTENT)


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELTUNE_HOME", str(tmp_path / "ws"))
    upload_route._workspace.cache_clear()
    ws = Workspace.open(tmp_path / "ws")
    http = TestClient(Starlette(routes=upload_route.routes()))
    token = generate_xsrf_token_string()
    http.cookies.set(XSRF_COOKIE_NAME, token)
    http.headers.update({"X-Xsrftoken": generate_xsrf_token_string(*_token_of(token)), "Tus-Resumable": "1.0.0"})
    yield ws, http
    upload_route._workspace.cache_clear()


def _token_of(cookie: str) -> tuple[bytes, int]:
    from streamlit.web.server.starlette.starlette_app_utils import decode_xsrf_token_string

    token, timestamp = decode_xsrf_token_string(cookie)
    return token, timestamp


def new_upload(http, ws, owner="alice", length=MIB, name="数据.zip"):
    metadata = "filename " + base64.b64encode(name.encode()).decode()
    answer = http.post(PREFIX, headers={GRANT_HEADER: uploads.grant(ws, owner), "Upload-Length": str(length),
                                        "Upload-Metadata": metadata})  # fmt: skip
    assert answer.status_code == 201, answer.text
    return answer.headers["Location"]


def send(http, ws, url, offset, data, owner="alice"):
    return http.patch(url, content=data, headers={GRANT_HEADER: uploads.grant(ws, owner), "Upload-Offset": str(offset),
                                                  "Content-Type": "application/offset+octet-stream"})  # fmt: skip


def offset_of(http, ws, url, owner="alice"):
    answer = http.head(url, headers={GRANT_HEADER: uploads.grant(ws, owner)})
    return answer.status_code, int(answer.headers.get("Upload-Offset", -1))


def test_chunks_in_order_out_of_order_and_a_resume_from_the_stored_offset(client):
    ws, http = client
    url = new_upload(http, ws)
    assert offset_of(http, ws, url) == (200, 0)
    first = send(http, ws, url, 0, CONTENT[:300_000])
    assert first.status_code == 204 and first.headers["Upload-Offset"] == "300000"
    # out of order: a chunk for a later offset is refused, and nothing changes
    assert send(http, ws, url, 600_000, CONTENT[600_000:]).status_code == 409
    assert offset_of(http, ws, url) == (200, 300_000)
    # a dropped connection and a closed tab: the client asks for the offset and sends the rest from there
    code, at = offset_of(http, ws, url)
    assert send(http, ws, url, at, CONTENT[at:]).headers["Upload-Offset"] == str(len(CONTENT))
    upload_id = url.rsplit("/", 1)[1]
    path, name = uploads.take(ws, "alice", upload_id)
    assert path.read_bytes() == CONTENT and name == "数据.zip" and path.parent == ws.staging_dir
    assert offset_of(http, ws, url)[0] == 404  # handed over: the upload itself is gone


def test_the_length_and_the_limit_are_enforced_while_the_bytes_arrive(client, monkeypatch):
    ws, http = client
    url = new_upload(http, ws, length=1000)
    answer = send(http, ws, url, 0, CONTENT[:5000])  # more than it declared
    assert answer.status_code == 413
    assert list(uploads.uploads_dir(ws).iterdir()) == []  # nothing left behind
    monkeypatch.setenv(uploads.MAX_BYTES_ENV, "0.5")  # GiB
    refused = http.post(PREFIX, headers={GRANT_HEADER: uploads.grant(ws, "alice"), "Upload-Length": str(2**30)})
    assert refused.status_code == 413 and "LABELTUNE_MAX_UPLOAD_GB" in refused.text
    too_big_for_disk = http.post(PREFIX, headers={GRANT_HEADER: uploads.grant(ws, "alice"), "Upload-Length": "0"})
    assert too_big_for_disk.status_code == 201  # (an empty upload fits)
    monkeypatch.setattr(uploads.shutil, "disk_usage", lambda _: SimpleNamespace(free=10 * 2**20))
    full = http.post(PREFIX, headers={GRANT_HEADER: uploads.grant(ws, "alice"), "Upload-Length": str(2**20)})
    assert full.status_code == 507  # free disk checked before accepting


def test_xsrf_the_grant_and_the_owner_are_required(client):
    ws, http = client
    url = new_upload(http, ws)
    bare = TestClient(Starlette(routes=upload_route.routes()))
    no_xsrf = bare.post(PREFIX, headers={GRANT_HEADER: uploads.grant(ws, "alice"), "Upload-Length": "10",
                                         "Tus-Resumable": "1.0.0"})  # fmt: skip
    assert no_xsrf.status_code == 403 and "XSRF" in no_xsrf.text
    assert http.post(PREFIX, headers={"Upload-Length": "10"}).status_code == 403  # no grant: no page behind it
    genuine = uploads.grant(ws, "alice")
    forged = genuine[:-1] + ("1" if genuine.endswith("0") else "0")  # one digit of the signature changed
    assert http.post(PREFIX, headers={GRANT_HEADER: forged, "Upload-Length": "10"}).status_code == 403
    expired = uploads.grant(ws, "alice", now=time.time() - 2 * uploads.GRANT_TTL_S)
    assert http.post(PREFIX, headers={GRANT_HEADER: expired, "Upload-Length": "10"}).status_code == 403
    # another owner can neither read its offset, resume it nor cancel it
    assert offset_of(http, ws, url, owner="mallory")[0] == 404
    assert send(http, ws, url, 0, CONTENT[:10], owner="mallory").status_code == 404
    assert http.delete(url, headers={GRANT_HEADER: uploads.grant(ws, "mallory")}).status_code == 404
    assert http.delete(url, headers={GRANT_HEADER: uploads.grant(ws, "alice")}).status_code == 204  # its own
    assert list(uploads.uploads_dir(ws).iterdir()) == []


def test_a_full_disk_mid_upload_leaves_no_partial_file(client, monkeypatch):
    """ENOSPC from the file's writes (a real small disk is the next test, where the machine allows one)."""
    ws, http = client
    url = new_upload(http, ws)

    class FillsUp:
        def __init__(self, real):
            self.real, self.written = real, 0

        def write(self, chunk):
            if self.written + len(chunk) > 200_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(chunk)
            return self.real.write(chunk)

        def __getattr__(self, name):
            return getattr(self.real, name)

    monkeypatch.setattr(uploads, "open", lambda *a, **k: FillsUp(open(*a, **k)), raising=False)
    answer = send(http, ws, url, 0, CONTENT)
    assert answer.status_code == 507 and "does not fit" in answer.text
    assert list(uploads.uploads_dir(ws).iterdir()) == []


def test_a_full_disk_mid_upload_on_a_real_small_disk(client, small_disk, monkeypatch):
    ws, http = client
    monkeypatch.setattr(uploads, "DISK_RESERVE_BYTES", 0)  # a 2 MiB disk cannot keep a GiB free
    monkeypatch.setattr(uploads, "uploads_dir", lambda _ws: small_disk)
    url = new_upload(http, ws, length=1_500_000)  # fits when it is created
    (small_disk / "filler").write_bytes(b"x" * 1_000_000)  # then something else takes the disk
    answer = send(http, ws, url, 0, (CONTENT * 2)[:1_500_000])
    assert answer.status_code == 507
    assert [p.name for p in small_disk.iterdir()] == ["filler"]


def test_abandoned_partial_uploads_are_swept(client):
    ws, http = client
    old, fresh = new_upload(http, ws), new_upload(http, ws)
    send(http, ws, old, 0, CONTENT[:1000])
    part = uploads.uploads_dir(ws) / f"{old.rsplit('/', 1)[1]}.part"
    stale = time.time() - uploads.ABANDONED_AFTER_S - 60
    for path in (part, part.with_suffix(".json")):
        os.utime(path, (stale, stale))
    assert uploads.sweep(ws) == 1
    assert offset_of(http, ws, old)[0] == 404 and offset_of(http, ws, fresh) == (200, 0)
    assert [u.id for u in uploads.unfinished(ws, "alice")] == [fresh.rsplit("/", 1)[1]]
