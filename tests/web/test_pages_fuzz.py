"""Every web route with hostile path segments and query strings: never a 5xx, every error an HTML
page with X-Error-Code, nothing of the input echoed unescaped. A new route fails the first test
until it has a template here."""

from __future__ import annotations

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hub.conftest import hub  # noqa: F401  (the session Hub server)
from zoo.hub.server.web import routes as W

TEMPLATES = {
    "models_page": ["/", "/models?{q}", "/models?search={s}&other={s}&sort={s}&p={s}"],
    "datasets_page": ["/datasets?{q}"],
    "login_form": ["/login?next={s}"],
    "login": [],  # POST: tested in test_pages.py (bad token, other origins)
    "logout": [],
    "static_file": ["/static/{s}", "/static/vendor/{s}"],
    "favicon": ["/favicon.ico"],
    "namespace_page": ["/{s}"],
    "repo_page": ["/{s}/{s}", "/datasets/{s}/{s}", "/web/fuzz"],
    "tree_page": ["/web/fuzz/tree/{s}", "/web/fuzz/tree/main/{s}", "/{s}/{s}/tree/{s}"],
    "blob_page": ["/web/fuzz/blob/{s}/{s}", "/web/fuzz/blob/main/{s}"],
    "raw_file": ["/web/fuzz/raw/{s}/{s}", "/web/fuzz/raw/main/{s}"],
    "commits_page": ["/web/fuzz/commits/{s}?p={s}", "/web/fuzz/commits/main/{s}"],
    "commit_page": ["/web/fuzz/commit/{s}"],
    "discussions_page": ["/{s}/{s}/discussions"],
    "discussion_page": ["/web/fuzz/discussions/{s}"],
    "tree_of_models_page": ["/web/fuzz/tree-of-models?rev={s}", "/{s}/{s}/tree-of-models"],
    "experiments_page": ["/zoo/experiments"],
    "experiment_page": ["/zoo/experiments/{s}"],
}
HOSTILE = st.one_of(
    st.text(min_size=1, max_size=40),
    st.sampled_from(["..", "%2e%2e", "..%2F..%2Fhub.json", "%00", "%ff%fe", "refs%2Fpr%2F1",
                     "<script>alert(1)</script>", "%3Cimg%20src%3Dx%3E", "a" * 300, "main",
                     "9" * 30, "-1", "%", "%%", "~", "@", "\\", "v1", "a%2Fb"]),
)  # fmt: skip


def test_every_web_route_has_a_template():
    names = {handler.__name__ for _m, _p, handler in W.WEB_ROUTES}
    assert names <= set(TEMPLATES), f"no fuzz template for {sorted(names - set(TEMPLATES))}"


def _fill(template: str, data) -> str:
    from urllib.parse import quote

    out = template
    while "{s}" in out:
        value = data.draw(HOSTILE)
        out = out.replace("{s}", value if "%" in value else quote(value, safe=""), 1)
    return out.replace("{q}", "search=x&kind=bag&experiment=e&author=a&license=mit")


@pytest.fixture(scope="module")
def fuzz_repo(hub):  # noqa: F811
    api = hub.api()
    api.create_repo("web/fuzz", exist_ok=True)
    api.upload_file(path_or_fileobj=b"# fuzz\n", path_in_repo="README.md", repo_id="web/fuzz")
    return "web/fuzz"


@settings(max_examples=150, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))  # fmt: skip
@given(data=st.data())
def test_no_5xx_and_html_errors_on_hostile_pages(hub, fuzz_repo, data):  # noqa: F811
    templates = [t for ts in TEMPLATES.values() for t in ts]
    target = _fill(data.draw(st.sampled_from(templates)), data)
    r = httpx2.get(f"{hub.url}{target}", headers={"accept": "text/html"})
    assert r.status_code < 500, (target, r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert r.headers.get("x-error-code"), target
        assert r.headers["content-type"].startswith("text/html"), target
    if "text/html" in r.headers.get("content-type", ""):
        assert "<script>alert(1)</script>" not in r.text and "<img src=x>" not in r.text, target
