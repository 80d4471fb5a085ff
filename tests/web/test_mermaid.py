"""mermaid as the Hub serves it (static/vendor/mermaid/, copied by scripts/web-assets.sh), drawn
in Chromium under a Content-Security-Policy: what the web face's CSP must allow, and what not.

Measured here (mermaid 12.3.0, securityLevel 'strict'): it needs `script-src 'self'` (no
'unsafe-eval') and `style-src 'unsafe-inline'` (it writes a <style> into each SVG and style
attributes on its nodes); nothing else, so `default-src 'none'` works: no images, fonts or
fetches of its own. Its labels are HTML, sanitised but not escaped: `<img src=...>` in a label
survives (an image request), while mermaid's entity codes (#lt; #gt; #quot;) are shown as text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.web.browser import ROOT, assert_clean, static_server

STATIC = ROOT / "zoo" / "hub" / "server" / "web" / "static"
ENTRY = STATIC / "vendor" / "mermaid" / "mermaid.esm.min.mjs"
BRIEF_CSP = (
    "script-src 'self'; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'"
)
STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
LINEAGE = """graph BT
  base["zoo/base@1a2b3c4"] --> bag["zoo/bag-0.4@5d6e7f8"]
  bag --> merged["zoo/merged@9a0b1c2"]
  base --> merged"""
APP = """import mermaid from "/static/vendor/mermaid/mermaid.esm.min.mjs";
mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
await mermaid.run({ querySelector: ".mermaid" });
document.body.dataset.rendered = "yes";
"""


@pytest.fixture
def mermaid_site(tmp_path):
    """serve(graph, csp) -> the URL of a page drawing GRAPH with the vendored mermaid."""
    assert ENTRY.is_file(), f"{ENTRY} is missing: run scripts/web-assets.sh (make test does)"
    site = tmp_path / "site"
    site.mkdir()
    (site / "static").symlink_to(STATIC)
    (site / "app.js").write_text(APP)
    servers = []

    def serve(graph: str, csp: str) -> str:
        page = (
            '<!doctype html><html><head><meta charset="utf-8"><title>lineage</title></head>'
            f'<body><pre class="mermaid">{graph}</pre>'
            '<script type="module" src="/app.js"></script></body></html>'
        )
        (site / "index.html").write_text(page)
        server = static_server(site, {"Content-Security-Policy": csp})
        servers.append(server)
        return server.__enter__() + "/index.html"

    yield serve
    for server in servers:
        server.__exit__(None, None, None)


def _draw(browser, url: str) -> list[str]:
    browser.goto(url)
    browser.page.wait_for_selector("body[data-rendered=yes]", state="attached")
    return browser.page.locator("svg g.node").all_text_contents()


def test_a_lineage_renders_under_the_csp(browser, mermaid_site):
    nodes = _draw(browser, mermaid_site(LINEAGE, BRIEF_CSP))
    assert nodes == ["zoo/base@1a2b3c4", "zoo/bag-0.4@5d6e7f8", "zoo/merged@9a0b1c2"]
    assert browser.page.locator("svg g.edgePaths path").count() == 3
    assert browser.page.locator("svg").bounding_box()["height"] > 100
    assert_clean(browser.log)
    served = {u.split("/", 3)[3] for u in browser.log.requests}
    assert "static/vendor/mermaid/mermaid.esm.min.mjs" in served
    assert any(u.startswith("static/vendor/mermaid/chunks/mermaid.esm.min/") for u in served)
    browser.screenshot("mermaid-lineage")


def test_it_needs_nothing_but_self_scripts_and_inline_styles(browser, mermaid_site):
    """default-src 'none': no image, font, fetch or eval of mermaid's own is refused."""
    assert len(_draw(browser, mermaid_site(LINEAGE, STRICT_CSP))) == 3
    assert_clean(browser.log)


def test_without_inline_styles_the_csp_refuses_its_styles(browser, mermaid_site):
    csp = BRIEF_CSP.replace(" 'unsafe-inline'", "")
    assert len(_draw(browser, mermaid_site(LINEAGE, csp))) == 3  # drawn, but unstyled
    refused = [m for m in browser.log.console_errors if "Applying inline style violates" in m]
    assert refused and all("style-src 'self'" in m for m in refused)


@pytest.mark.parametrize("csp", ["brief", "strict"])
def test_labels_are_sanitised_html_not_text(browser, mermaid_site, csp):
    """What reaches mermaid must be escaped with its entity codes: strict mode drops scripts and
    handlers but keeps <img>, so an unescaped label makes the page load an image, which only a
    CSP without img-src sources (default-src 'none') refuses."""
    graph = (
        'graph BT\n  a["&lt;img src=http://example.com/p.png&gt;"] --> b["&lt;script&gt;'
        'alert(1)&lt;/script&gt;x"]\n  b --> c["#lt;b#gt;bold#lt;/b#gt; #quot;q#quot;"]'
    )
    nodes = _draw(browser, mermaid_site(graph, {"brief": BRIEF_CSP, "strict": STRICT_CSP}[csp]))
    assert nodes == ["", "x", '<b>bold</b> "q"']
    assert browser.page.locator("svg g.node img").count() == 1
    assert browser.page.locator("svg script, svg b").count() == 0
    assert browser.log.dialogs == browser.log.page_errors == []
    if csp == "brief":
        assert set(browser.log.violations) == {"http://example.com/p.png"}
    else:
        assert browser.log.violations == []
        assert any(
            "Loading the image 'http://example.com/p.png' violates" in m
            for m in browser.log.console_errors
        )


def test_the_served_version_is_the_locked_one():
    lock = json.loads((ROOT / "web" / "package-lock.json").read_text())
    package = json.loads((ROOT / "web" / "package.json").read_text())
    installed = json.loads(Path(ROOT / "web/node_modules/mermaid/package.json").read_text())
    assert package["dependencies"]["mermaid"] == "12.3.0"
    assert lock["packages"]["node_modules/mermaid"]["version"] == "12.3.0"
    assert installed["version"] == "12.3.0"
    vendored = ROOT / "web/node_modules/mermaid/dist/mermaid.esm.min.mjs"
    assert ENTRY.read_bytes() == vendored.read_bytes()
