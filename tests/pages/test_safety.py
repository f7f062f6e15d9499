"""Safe to share with a team: Streamlit's login honoured when configured, and an unexpected error shown
as a reference (its details in the server's log and the workspace's logs/app-errors.log, never on the page)."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.i18n import tr
from ui.common import md_text

ROOT = Path(__file__).resolve().parents[2]
PAGES = (
    "pages/dataset.py",
    "pages/label.py",
    "pages/train.py",
    "pages/evaluate.py",
    "pages/predict.py",
    "pages/jobs.py",
)
OIDC = {"client_id": "labeltune", "client_secret": "s3cret", "server_metadata_url": "https://id.example.invalid/.well-known/openid-configuration"}  # fmt: skip
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "a-long-random-string", **OIDC}


def app(secrets: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    for key, value in (secrets or {}).items():
        at.secrets[key] = value
    return at


def texts(at: AppTest) -> str:
    return " ".join(str(e.value) for kind in (at.markdown, at.caption, at.header, at.info, at.error) for e in kind)


@pytest.fixture
def authlib(monkeypatch):
    """Streamlit's login needs Authlib; the gate looks for it (the login round trip is not tested offline)."""
    import importlib.util

    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "authlib" else found(name, *a)
    )


@pytest.mark.parametrize("page", PAGES)
def test_with_a_login_configured_every_page_asks_for_it_first(home, page, authlib):
    at = app({"auth": AUTH})
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert [b.label for b in at.button] == [tr("auth.login", "en")]
    assert tr("auth.required", "en") in texts(at)
    assert not at.selectbox and not at.subheader  # nothing of the page itself
    assert str(home) not in texts(at)  # not even the workspace's path in the sidebar
    # no streaming uploader, so no grant to upload with: the upload route refuses every request without one
    assert "_upload_grant" not in at.session_state


def test_several_login_providers_each_get_a_button(home, authlib):
    at = app({"auth": {"redirect_uri": AUTH["redirect_uri"], "cookie_secret": "x", "google": OIDC, "microsoft": OIDC}})
    at.run()
    assert [b.label for b in at.button] == ["Log in with Google", "Log in with Microsoft"]


def test_a_login_configured_without_authlib_says_what_to_install(home, monkeypatch):
    import importlib.util

    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "authlib" else found(name, *a))
    at = app({"auth": AUTH})
    at.run()
    assert not at.exception and "pip install Authlib" in at.error[0].value and not at.button


def test_without_a_login_configured_the_pages_open_as_before(home):
    at = app()
    at.run()
    assert not at.exception and tr("dataset.header", "en") in [h.value for h in at.header]
    assert not [b for b in at.button if b.label == tr("auth.login", "en")]
    assert "_upload_grant" in at.session_state  # the Dataset page's streaming uploader got its grant


def test_an_unexpected_error_shows_a_reference_and_logs_its_details(home, monkeypatch):
    from core.jobs import queue

    def broken(*args, **kwargs):
        raise RuntimeError("secret detail: /srv/private/path")

    monkeypatch.setattr(queue, "slots", broken)
    at = app()
    at.run()
    at.switch_page("pages/jobs.py").run()
    assert not at.exception, at.exception  # not Streamlit's exception box
    [error] = at.error
    ref = error.value.split(tr("app.unexpected", "en", ref="@").split("@")[0])[1].split(":")[0]
    assert len(ref) == 8 and "secret" not in texts(at)
    log = (home / "logs" / "app-errors.log").read_text(encoding="utf-8")
    assert f"reference {ref}" in log and "RuntimeError: secret detail: /srv/private/path" in log
    assert "Traceback" in log


def test_the_integrity_check_at_start_up_is_shown_in_the_sidebar_and_repairs_nothing(home):
    from core.store.workspace import Workspace

    ws = Workspace.open(home)
    (ws.runs_dir / "20260101-000000-0000").mkdir()
    at = app()
    at.run()
    assert not at.exception
    [warning] = at.sidebar.warning
    assert md_text("20260101-000000-0000") in warning.value and (ws.runs_dir / "20260101-000000-0000").is_dir()


def test_a_damaged_store_is_a_message_on_the_page_not_a_traceback(home):
    from core.store.workspace import Workspace

    ws = Workspace.open(home)
    ws.db_path.write_bytes(b"not a database " * 200)
    for suffix in ("-wal", "-shm"):
        Path(f"{ws.db_path}{suffix}").unlink(missing_ok=True)
    at = app()
    at.run()
    assert not at.exception, at.exception
    assert "cannot be read" in at.error[0].value
