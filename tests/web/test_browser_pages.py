"""The web face in a real headless Chromium (Debian's, driven by Playwright): every page type
loads with no console error and no request leaving 127.0.0.1, the merged card shows its results,
plot and lineage graph, the leaderboard sorts, private repos stay hidden until signed in, and
no XSS payload runs. Screenshots go to build/test-artifacts/web/."""

from __future__ import annotations

import pytest

from tests.hub.conftest import hub  # noqa: F401  (the session Hub server)
from tests.web.browser import assert_clean
from tests.web.published import EVIL_FILE, XSS_REPO, publish_boom, publish_xss

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def boom(hub, tiny_suite, tiny_bert, tmp_path_factory):  # noqa: F811
    return publish_boom(hub, tiny_suite, tiny_bert, tmp_path_factory.mktemp("boom"))


def _pages(hub, boom) -> dict[str, str]:  # noqa: F811
    sha = hub.api().model_info(boom.merged).sha
    m = boom.merged
    return {
        "home": "/",
        "models": "/models?kind=bag&sort=alphabetical",
        "datasets": "/datasets",
        "model": f"/{m}",
        "files": f"/{m}/tree/main",
        "blob": f"/{m}/blob/main/recipe.yaml",
        "safetensors": f"/{m}/blob/main/model.safetensors",
        "commits": f"/{m}/commits/main",
        "commit": f"/{m}/commit/{sha}",
        "discussions": f"/{m}/discussions",
        "model-tree": f"/{m}/tree-of-models",
        "experiments": "/zoo/experiments",
        "leaderboard": f"/zoo/experiments/{boom.experiment}",
        "login": "/login",
    }


def _open(browser, url: str):
    response = browser.goto(url)
    if browser.page.locator("pre.mermaid").count():
        browser.page.locator("body[data-graphs='drawn']").wait_for(state="attached")
    return response


PAGES = ["home", "models", "datasets", "model", "files", "blob", "safetensors", "commits",
         "commit", "discussions", "model-tree", "experiments", "leaderboard", "login"]  # fmt: skip


@pytest.mark.parametrize("name", PAGES)
def test_each_page_type_loads_clean(browser, hub, boom, name):  # noqa: F811
    response = _open(browser, hub.url + _pages(hub, boom)[name])
    assert response.status == 200
    assert browser.page.locator("main").is_visible()
    assert_clean(browser.log)
    local = [r for r in browser.log.requests if r.startswith(hub.url)]
    assert local and len(local) == len(browser.log.requests)


def test_a_missing_page_is_an_html_page(browser, hub):  # noqa: F811
    response = browser.goto(hub.url + "/nobody/nothing-here")
    assert response.status == 404
    assert browser.page.locator("h1").inner_text() == "404"
    assert browser.page.get_by_role("link", name="Back to the models").is_visible()


def test_merged_card_shows_results_plot_and_lineage(browser, hub, boom):  # noqa: F811
    _open(browser, f"{hub.url}/{boom.merged}")
    card = browser.page.locator("#card")
    table = card.locator("table").first
    assert table.is_visible()
    for task in boom.tasks:
        assert table.get_by_text(task, exact=True).first.is_visible()
    plot = card.locator("img[src$='scores.png']")
    assert plot.is_visible()
    assert plot.evaluate("img => img.complete && img.naturalWidth > 100")
    nodes = card.locator("pre.mermaid svg g.node")
    assert nodes.count() == 1 + len(set(boom.parents) | {boom.base})  # the merged model + parents
    assert_clean(browser.log)
    browser.screenshot("model-page")


def test_model_tree_links_every_node(browser, hub, boom):  # noqa: F811
    _open(browser, f"{hub.url}/{boom.merged}/tree-of-models")
    nodes = browser.page.locator("pre.mermaid svg g.node")
    assert nodes.count() >= 1 + len(set(boom.parents) | {boom.base})
    assert browser.page.locator("pre.mermaid svg g.node.linked").count() == nodes.count()
    assert_clean(browser.log)
    browser.screenshot("model-tree")


def _column(page, i: int) -> list[str]:
    return page.locator(f"table.board tbody tr td:nth-child({i + 1})").evaluate_all(
        "cells => cells.map(c => c.dataset.value ?? c.textContent.trim())"
    )


def test_leaderboard_sorts_and_marks_the_best(browser, hub, boom):  # noqa: F811
    _open(browser, f"{hub.url}/zoo/experiments/{boom.experiment}")
    page = browser.page
    headers = page.locator("table.board thead th")
    names = [h.strip() for h in headers.all_inner_texts()]
    i = next(k for k, n in enumerate(names) if boom.tasks[0] in n)
    assert page.locator("table.board tbody tr").count() >= 4  # base, 2 bags, BLS, merged
    headers.nth(i).locator("button").click()
    values = [float(v) for v in _column(page, i) if v not in ("", "—")]
    assert values == sorted(values, reverse=True) and len(values) >= 4
    headers.nth(i).locator("button").click()
    values = [float(v) for v in _column(page, i) if v not in ("", "—")]
    assert values == sorted(values)
    assert page.locator("table.board td.best").count() >= len(boom.tasks)
    assert_clean(browser.log)
    browser.screenshot("leaderboard")


def test_private_repo_absent_until_signed_in(browser, hub):  # noqa: F811
    token = hub.add_token("browserowner")
    api = hub.api(token)
    api.create_repo("browserowner/private-model", private=True, exist_ok=True)
    api.upload_file(path_or_fileobj=b"# only mine", path_in_repo="README.md",
                    repo_id="browserowner/private-model")  # fmt: skip
    page = browser.page
    browser.goto(f"{hub.url}/models?search=private-model")
    assert page.get_by_text("browserowner/private-model").count() == 0
    assert browser.goto(f"{hub.url}/browserowner/private-model").status == 404
    browser.goto(f"{hub.url}/login?next=/models%3Fsearch%3Dprivate-model")
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/models?search=private-model")
    assert page.get_by_text("browserowner/private-model").is_visible()
    page.get_by_role("link", name="browserowner/private-model").click()
    assert page.locator("#card").inner_text().strip() == "only mine"
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script can read the token
    page.get_by_role("button", name="Sign out").click()
    assert browser.goto(f"{hub.url}/browserowner/private-model").status == 404


def _xss_pages(hub) -> list[str]:  # noqa: F811
    from urllib.parse import quote

    pr = hub.api().get_repo_discussions(XSS_REPO)
    num = next(d.num for d in pr if d.is_pull_request)
    sha = hub.api().model_info(XSS_REPO).sha
    r = f"/{XSS_REPO}"
    return [r, f"{r}/tree/main", f"{r}/blob/main/{quote(EVIL_FILE)}", f"{r}/commits/main",
            f"{r}/commit/{sha}", f"{r}/discussions", f"{r}/discussions/{num}",
            f"{r}/raw/main/evil.svg", f"{r}/raw/main/evil.html", f"{r}/raw/main/{quote(EVIL_FILE)}",
            "/models?search=payloads", "/login?next=javascript:alert(1)"]  # fmt: skip


def test_every_xss_payload_is_inert(browser, hub):  # noqa: F811
    publish_xss(hub)
    for path in _xss_pages(hub):
        _open(browser, hub.url + path)
        assert browser.page.evaluate("window.__xss") is None, path
        assert not browser.log.dialogs, (path, browser.log.dialogs)
        assert not browser.log.violations, (path, browser.log.violations)
        assert not browser.log.page_errors, (path, browser.log.page_errors)
    browser.goto(f"{hub.url}/{XSS_REPO}")
    for link in browser.page.locator("#card a").evaluate_all("as => as.map(a => a.href)"):
        assert link == "" or link.startswith((hub.url, "https://")), link  # "": href dropped
