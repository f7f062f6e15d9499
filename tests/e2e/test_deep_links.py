"""In a real browser against `streamlit run`: the first visit to a freshly started server may be a deep
link (a bookmark, a link in a chat); every page answers at its own address through the app's navigation
(its sidebar and layout), not as a bare file from the `pages/` folder.

The server and the browser come from `conftest.py`."""

from __future__ import annotations

APP_PAGES = ("Dataset", "Label", "Train", "Evaluate", "Predict", "Jobs")


def test_a_deep_link_first_opens_its_page_through_the_app(server, browser):
    page = browser.new_page()
    for path, header in (("label", "Label"), ("jobs", "Jobs"), ("", "Dataset")):
        page.goto(f"{server.url}/{path}")
        page.get_by_role("heading", name=header).first.wait_for(timeout=30_000)
        nav = page.locator("[data-testid=stSidebarNav]").inner_text()
        assert all(name in nav for name in APP_PAGES), nav  # the app's navigation, not the file list
        assert "streamlit app" not in nav.lower()
        assert page.url.rstrip("/") == f"{server.url}/{path}".rstrip("/")
        assert not page.locator("[data-testid=stException]").count()
