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
    # Once this tab has run the app, every address the README names still opens its page (Streamlit serves
    # the default page at "/" only: "/dataset" said "Page not found" here).
    for path, header in (("dataset", "Dataset"), ("train", "Train"), ("", "Dataset"), ("dataset", "Dataset")):
        page.goto(f"{server.url}/{path}")
        page.get_by_role("heading", name=header).first.wait_for(timeout=30_000)
        page.wait_for_timeout(1_000)  # the not-found dialog comes with the navigation message
        assert not page.get_by_text("Page not found").count(), path
        assert not page.locator("[data-testid=stException]").count()
    page.close()
