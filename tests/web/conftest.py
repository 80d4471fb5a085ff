"""Fixtures for browser tests: Debian's Chromium driven by Playwright (tests/web/browser.py).

`chromium` is one headless browser for the session; `browser` is a fresh context and page per
test, whose `log` records console errors, page errors, requests, dialogs and refused requests:

    from tests.web.browser import assert_clean

    def test_home_page(browser, hub):  # hub: a live server on 127.0.0.1 (tests/hub/conftest.py's)
        response = browser.goto(hub.url + "/")
        assert response.status == 200
        assert browser.page.locator("h1").inner_text() == "Models"
        assert_clean(browser.log)
        browser.screenshot("home")  # build/test-artifacts/web/home.png

While the session's Playwright runs, its event loop is the main thread's running loop:
`asyncio.run` there fails (threads, Starlette's TestClient and anyio portals are not affected).
tests/web sorts last, so it starts after every other package's tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.web.browser import BrowserPage, browser_page, launch


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    browser = launch(playwright)
    yield browser
    browser.close()


@pytest.fixture
def browser(chromium: Browser) -> Iterator[BrowserPage]:
    with browser_page(chromium) as page:
        yield page
