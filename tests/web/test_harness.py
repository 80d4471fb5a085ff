"""The browser harness itself: what it records, what assert_clean refuses, what it blocks."""

from __future__ import annotations

import re

import pytest

from tests.web.browser import (
    ARTIFACTS,
    ROOT,
    PageLog,
    assert_clean,
    browser_page,
    is_local,
    static_server,
)

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p id="out">waiting</p>{body}</body></html>"""


@pytest.fixture
def site(tmp_path):
    """Write pages and scripts into a folder served on 127.0.0.1: site(name, text) -> its URL."""
    folder = tmp_path / "site"
    folder.mkdir()
    with static_server(folder) as base:

        def write(name: str, text: str) -> str:
            (folder / name).write_text(text, encoding="utf-8")
            return f"{base}/{name}"

        write.base = base
        yield write


def _page(site, name: str, script: str | None = None, body: str = "") -> str:
    if script is not None:
        site(f"{name}.js", script)
        body += f'<script src="/{name}.js"></script>'
    return site(f"{name}.html", PAGE.format(title=name, body=body))


def test_a_clean_page_passes(browser, site):
    url = _page(site, "clean", "document.getElementById('out').textContent = 'ran';")
    response = browser.goto(url)
    assert response.status == 200
    assert browser.page.locator("#out").inner_text() == "ran"
    assert browser.log.requests == [url, f"{site.base}/clean.js"]
    assert_clean(browser.log)


def test_a_console_error_fails_assert_clean(browser, site):
    browser.goto(_page(site, "logs", "console.log('fine'); console.error('boom', 42);"))
    assert [m.split(" (")[0] for m in browser.log.console_errors] == ["boom 42"]
    with pytest.raises(AssertionError, match=r"console error: boom 42"):
        assert_clean(browser.log)


def test_an_uncaught_exception_is_a_page_error(browser, site):
    browser.goto(_page(site, "throws", "null.property;"))
    [error] = browser.log.page_errors
    assert error.startswith("TypeError: Cannot read properties of null")
    with pytest.raises(AssertionError, match=r"page error: TypeError"):
        assert_clean(browser.log)


def test_a_request_leaving_127_0_0_1_is_aborted_and_recorded(browser, site):
    script = """fetch('http://example.com/x')
      .then(() => { document.getElementById('out').textContent = 'reached'; })
      .catch(() => { document.getElementById('out').textContent = 'refused'; });"""
    browser.goto(_page(site, "leaks", script))
    browser.page.locator("#out", has_text=re.compile("reached|refused")).wait_for()
    assert browser.page.locator("#out").inner_text() == "refused"
    assert browser.log.violations == ["http://example.com/x"]
    assert "http://example.com/x" in browser.log.requests
    with pytest.raises(AssertionError, match=r"request leaving 127.0.0.1: http://example.com/x"):
        assert_clean(browser.log)


def test_localhost_images_and_web_sockets_count_as_leaving_too(browser, site):
    port = site.base.rsplit(":", 1)[1]
    body = (
        f'<img src="http://localhost:{port}/clean.html"><img src="https://cdn.example.org/a.png">'
    )
    script = "new WebSocket('ws://example.com/socket');"
    browser.goto(_page(site, "assets", script, body=body))
    browser.page.wait_for_function("document.readyState === 'complete'")
    browser.page.wait_for_timeout(200)  # the WebSocket is opened after load
    assert sorted(browser.log.violations) == [
        f"http://localhost:{port}/clean.html",
        "https://cdn.example.org/a.png",
        "ws://example.com/socket",
    ]


def test_dialogs_are_recorded_and_dismissed(browser, site):
    script = """alert('hello');
      const answer = confirm('sure?');
      document.getElementById('out').textContent = 'confirm gave ' + answer;"""
    browser.goto(_page(site, "dialogs", script))
    assert browser.page.locator("#out").inner_text() == "confirm gave false"
    assert browser.log.dialogs == ["alert: hello", "confirm: sure?"]
    with pytest.raises(AssertionError, match=r"dialog: alert: hello"):
        assert_clean(browser.log)


def test_a_popup_is_watched_like_the_page(browser, site):
    _page(site, "popup", "alert('from the popup'); console.error('popup error');")
    body = '<a id="go" href="/popup.html" target="_blank">open</a>'
    browser.goto(_page(site, "opener", body=body))
    with browser.context.expect_page() as popup:
        browser.page.click("#go")
    popup.value.wait_for_load_state()
    assert browser.log.dialogs == ["alert: from the popup"]
    assert [m.split(" (")[0] for m in browser.log.console_errors] == ["popup error"]


def test_each_test_gets_a_fresh_context(chromium, site):
    url = _page(site, "storage")
    with browser_page(chromium) as first:
        first.goto(url)
        first.page.evaluate("localStorage.setItem('k', 'v'); document.cookie = 'c=1'")
        assert first.page.evaluate("localStorage.getItem('k') + document.cookie") == "vc=1"
    with browser_page(chromium) as second:
        second.goto(url)
        assert second.page.evaluate("[localStorage.getItem('k'), document.cookie]") == [None, ""]
        assert_clean(second.log)


def test_a_screenshot_is_saved_as_a_test_artefact(browser, site):
    browser.goto(_page(site, "shot"))
    path = browser.screenshot("harness-shot")
    assert path == ARTIFACTS / "harness-shot.png"
    assert path.is_relative_to(ROOT / "build")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 1000


def test_what_counts_as_local():
    assert is_local("http://127.0.0.1:8000/zoo/merged")
    assert is_local("data:image/png;base64,AAAA")
    assert is_local("about:blank")
    assert not is_local("http://localhost:8000/")
    assert not is_local("http://127.0.0.2/")
    assert not is_local("https://cdn.jsdelivr.net/npm/mermaid")
    assert not is_local("http://127.0.0.1.example.com/")


def test_assert_clean_names_every_problem():
    log = PageLog(console_errors=["a"], page_errors=["b"], dialogs=["alert: c"], violations=["d"])
    with pytest.raises(AssertionError) as caught:
        assert_clean(log)
    assert str(caught.value).splitlines()[1:5] == [
        "console error: a",
        "page error: b",
        "dialog: alert: c",
        "request leaving 127.0.0.1: d",
    ]
    log.clear()
    log.requests.append("http://127.0.0.1/")  # requests alone are no problem
    assert_clean(log)
