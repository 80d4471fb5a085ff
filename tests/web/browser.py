"""A real headless Chromium for page tests: Debian's /usr/bin/chromium driven by Playwright.

Each test gets a fresh browser context (no cookies, no storage) with one page, wrapped in a
`BrowserPage` whose `log` records, for every page the context opens (popups included):

- console messages of type error (a Content-Security-Policy violation is one),
- page errors (uncaught exceptions and unhandled rejections),
- every request URL,
- dialogs (alert, confirm, prompt, beforeunload), each recorded and dismissed,
- violations: every request or WebSocket whose host is not 127.0.0.1, aborted before it leaves.

`assert_clean(log)` fails, listing them, when any of the first, second, fourth or fifth happened.
Chromium is started with its background networking off and a host resolver that resolves nothing
but 127.0.0.1, so nothing outside the routed requests can leave the machine either.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    Playwright,
    Request,
    Response,
    Route,
    WebError,
    WebSocketRoute,
)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package (scripts/browser-deps.sh installs it)
ARTIFACTS = ROOT / "build" / "test-artifacts" / "web"  # screenshots of test runs (gitignored)
DOCS_IMG = ROOT / "docs" / "img"  # the README's screenshots
LOCAL_HOST = "127.0.0.1"
# URLs that never reach the network.
LOCAL_SCHEMES = {"about", "data", "blob", "chrome-error"}
ARGS = [
    "--no-sandbox",  # as root: Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Defence in depth: any host name but 127.0.0.1 fails to resolve (preconnects, prefetches).
    f"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE {LOCAL_HOST}",
]
VIEWPORT = {"width": 1280, "height": 800}
TIMEOUT_MS = 10_000  # each Playwright action or wait (its default, 30 s, hides hangs)


def is_local(url: str) -> bool:
    """True for a URL on 127.0.0.1 (any port) or one that never reaches the network."""
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or parts.hostname == LOCAL_HOST


@dataclass
class PageLog:
    """What happened in a browser context, in order within each list."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)  # "alert: message"
    violations: list[str] = field(default_factory=list)  # URLs of aborted non-local requests

    def problems(self) -> list[str]:
        """One line per console error, page error, dialog and violation."""
        return (
            [f"console error: {m}" for m in self.console_errors]
            + [f"page error: {m}" for m in self.page_errors]
            + [f"dialog: {m}" for m in self.dialogs]
            + [f"request leaving {LOCAL_HOST}: {u}" for u in self.violations]
        )

    def clear(self) -> None:
        for name in ("console_errors", "page_errors", "requests", "dialogs", "violations"):
            getattr(self, name).clear()


def assert_clean(log: PageLog) -> None:
    """No console error, no page error, no dialog, no request leaving 127.0.0.1."""
    problems = log.problems()
    assert not problems, "the page was not clean:\n" + "\n".join(problems)


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG of the page as a test artefact: build/test-artifacts/web/NAME.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


class BrowserPage:
    """One test's page in its own fresh context, with everything it did in `log`."""

    def __init__(self, context: BrowserContext):
        self.context = context
        self.log = PageLog()
        context.set_default_timeout(TIMEOUT_MS)
        context.on("console", self._on_console)
        context.on("weberror", self._on_weberror)
        context.on("request", self._on_request)
        context.on("dialog", self._on_dialog)
        context.route(lambda url: not is_local(url), self._refuse)
        context.route_web_socket(lambda url: not is_local(url), self._refuse_web_socket)
        self.page = context.new_page()

    def goto(self, url: str, **kwargs) -> Response | None:
        """Open a URL in the test's page (Playwright's page.goto, after its `load` event)."""
        return self.page.goto(url, **kwargs)

    def screenshot(self, name: str, *, full_page: bool = True) -> Path:
        """Save this page as build/test-artifacts/web/NAME.png (see `screenshot`)."""
        return screenshot(self.page, name, full_page=full_page)

    def save_to(self, path: Path, *, full_page: bool = False) -> Path:
        """Save this page's screenshot at PATH too (the README's, in docs/img/)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "")
            self.log.console_errors.append(f"{message.text} ({where})" if where else message.text)

    def _on_weberror(self, error: WebError) -> None:
        self.log.page_errors.append(f"{error.error.name}: {error.error.message}")

    def _on_request(self, request: Request) -> None:
        self.log.requests.append(request.url)

    def _on_dialog(self, dialog: Dialog) -> None:
        self.log.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _refuse(self, route: Route) -> None:
        self.log.violations.append(route.request.url)
        route.abort("blockedbyclient")

    def _refuse_web_socket(self, ws: WebSocketRoute) -> None:
        self.log.violations.append(ws.url)
        ws.close()


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless, with no background networking."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run `make test` (scripts/browser-deps.sh)")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)


@contextmanager
def browser_page(browser: Browser) -> Iterator[BrowserPage]:
    """A fresh context (empty storage, 1280x800) and its page, closed afterwards."""
    context = browser.new_context(viewport=VIEWPORT, locale="en-US", timezone_id="UTC")
    try:
        yield BrowserPage(context)
    finally:
        context.close()


class _Handler(SimpleHTTPRequestHandler):
    headers_to_send: dict[str, str] = {}

    def end_headers(self) -> None:
        for name, value in self.headers_to_send.items():
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, format, *args) -> None:
        pass


@contextmanager
def static_server(folder: Path, headers: dict[str, str] | None = None) -> Iterator[str]:
    """Serve FOLDER on 127.0.0.1 (a free port) with HEADERS on every answer; yields the base URL.

    For pages that are not the Hub's: the harness's own tests, or an asset checked on its own.
    """
    handler = type("Handler", (_Handler,), {"headers_to_send": dict(headers or {})})
    server = ThreadingHTTPServer((LOCAL_HOST, 0), partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://{LOCAL_HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
