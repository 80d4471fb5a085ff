"""The web face's routes on a live embedded Hub: status codes, HTML errors for browsers, private
repos, signing in, the security headers, what each page shows. Repos are published with the
official huggingface_hub client, as users publish them."""

from __future__ import annotations

import io
import json
import struct

import httpx2
import pytest
from huggingface_hub import CommitOperationAdd

from tests.hub.conftest import hub  # noqa: F401  (the session Hub server)
from tests.web.signin import signed_in

HTML = {"accept": "text/html,application/xhtml+xml"}


def _safetensors(n: int = 4) -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [n, 2], "data_offsets": [0, 8 * n]}})
    return struct.pack("<Q", len(header)) + header.encode() + b"\0" * (8 * n)


CARD = """---
license: apache-2.0
library_name: sentence-transformers
base_model: org/base
tags: [sentence-similarity]
---
# A card

| task | score |
|---|---|
| T1 | 0.51 |

![plot](plot.png)
"""


@pytest.fixture(scope="module")
def repo(hub):  # noqa: F811
    api = hub.api()
    repo_id = "web/pages"
    api.create_repo(repo_id, exist_ok=True)
    ops = [
        CommitOperationAdd("README.md", CARD.encode()),
        CommitOperationAdd("plot.png", b"\x89PNG\r\n\x1a\nfake"),
        CommitOperationAdd("model.safetensors", _safetensors()),
        CommitOperationAdd("sub/notes.txt", b"hello <b>world</b>\n"),
        CommitOperationAdd("evil.html", b"<script>alert(1)</script>"),
    ]
    api.create_commit(repo_id, ops, commit_message="first <b>commit</b>")
    api.create_tag(repo_id, tag="v1")
    return repo_id


def get(hub, path, **kw):  # noqa: F811
    return httpx2.get(f"{hub.url}{path}", **kw)


@pytest.mark.parametrize(
    "page",
    ["", "/tree/main", "/tree/main/sub", "/tree/v1", "/blob/main/README.md",
     "/blob/main/model.safetensors", "/blob/main/sub/notes.txt", "/commits/main", "/discussions"],
)  # fmt: skip
def test_each_repo_page_is_html_with_the_security_headers(hub, repo, page):  # noqa: F811
    r = get(hub, f"/{repo}{page}")
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-eval" not in csp and "script-src 'self' 'unsafe-inline'" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"


def test_home_and_lists(hub, repo):  # noqa: F811
    for path in ("/", "/models", "/datasets", f"/models?search={repo.split('/')[1]}"):
        r = get(hub, path)
        assert r.status_code == 200 and "<html" in r.text
    assert repo in get(hub, f"/models?search={repo.split('/')[1]}").text
    assert repo not in get(hub, "/models?search=no-such-model-anywhere").text


def test_card_page_shows_metadata_table_and_image(hub, repo):  # noqa: F811
    text = get(hub, f"/{repo}").text
    assert "<table>" in text and "<td>0.51</td>" in text
    assert f'src="/{repo}/raw/main/plot.png"' in text
    assert "apache-2.0" in text and "sentence-transformers" in text
    assert 'href="/org/base"' in text  # base_model links to its page


def test_commit_message_and_file_content_are_escaped(hub, repo):  # noqa: F811
    commits = get(hub, f"/{repo}/commits/main").text
    assert "first &lt;b&gt;commit&lt;/b&gt;" in commits and "<b>commit</b>" not in commits
    blob = get(hub, f"/{repo}/blob/main/sub/notes.txt").text
    assert "hello &lt;b&gt;world&lt;/b&gt;" in blob


def test_safetensors_blob_shows_its_tensor_table(hub, repo):  # noqa: F811
    text = get(hub, f"/{repo}/blob/main/model.safetensors").text
    assert "<code>w</code>" in text and "4×2" in text and "8 parameters" in text


def test_commit_page_lists_the_changed_files(hub, repo):  # noqa: F811
    sha = hub.api().model_info(repo).sha
    text = get(hub, f"/{repo}/commit/{sha}").text
    for name in ("README.md", "model.safetensors", "sub/notes.txt"):
        assert name in text
    assert "added" in text


def test_raw_files_never_run_as_html(hub, repo):  # noqa: F811
    r = get(hub, f"/{repo}/raw/main/evil.html")
    assert r.status_code == 200 and r.headers["content-type"] == "text/plain; charset=utf-8"
    assert "sandbox" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert get(hub, f"/{repo}/raw/main/plot.png").headers["content-type"] == "image/png"
    assert get(hub, f"/{repo}/raw/main/model.safetensors").content == _safetensors()
    part = get(hub, f"/{repo}/raw/main/sub/notes.txt", headers={"range": "bytes=0-4"})
    assert part.status_code == 206 and part.content == b"hello"


@pytest.mark.parametrize(
    "path",
    ["/nobody/nothing", "/{repo}/tree/no-such-rev", "/{repo}/blob/main/missing.txt",
     "/{repo}/tree/main/no-folder", "/{repo}/discussions/99", "/{repo}/commit/" + "0" * 40,
     "/{repo}/blob/main/..%2F..%2Fhub.json", "/{repo}/raw/main/%2E%2E/%2E%2E/admin.token"],
)  # fmt: skip
def test_missing_things_are_html_404_pages(hub, repo, path):  # noqa: F811
    r = get(hub, path.format(repo=repo))
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "<h1>404</h1>" in r.text and r.headers["x-error-code"]


def test_unknown_paths_html_for_browsers_json_for_clients(hub):  # noqa: F811
    r = get(hub, "/a/b/c/d/e", headers=HTML)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    r = get(hub, "/a/b/c/d/e")
    assert r.status_code == 404 and r.json()["error"]
    r = get(hub, "/api/nothing-here", headers=HTML)
    assert r.status_code == 404 and r.json()["error"]  # the API stays JSON


def test_private_repo_invisible_until_signed_in(hub):  # noqa: F811
    token = hub.add_token("webowner")
    api = hub.api(token)
    api.create_repo("webowner/hidden-model", private=True, exist_ok=True)
    api.upload_file(path_or_fileobj=b"# secret card", path_in_repo="README.md",
                    repo_id="webowner/hidden-model")  # fmt: skip
    assert "hidden-model" not in get(hub, "/models?search=hidden").text
    assert get(hub, "/webowner/hidden-model").status_code == 404
    assert get(hub, "/webowner/hidden-model/raw/main/README.md").status_code == 404
    with httpx2.Client(base_url=hub.url) as browser:
        bad = browser.post("/login", data={"token": "hf_wrong", "next": "/"})
        assert bad.status_code == 401 and "unknown token" in bad.text
        r = browser.post("/login", data={"token": token, "next": "/webowner/hidden-model"})
        assert r.status_code == 303 and r.headers["location"] == "/webowner/hidden-model"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert "hidden-model" in browser.get("/models?search=hidden").text
        page = browser.get("/webowner/hidden-model")
        assert page.status_code == 200 and "secret card" in page.text and "private" in page.text
        other = hub.add_token("webstranger")
        browser.post("/logout")
        browser.post("/login", data={"token": other})
        assert browser.get("/webowner/hidden-model").status_code == 404  # not theirs
        browser.post("/logout")
        assert browser.get("/webowner/hidden-model").status_code == 404


def test_the_session_cookie_holds_no_token_and_names_its_port(hub):  # noqa: F811
    token = hub.add_token("sessionuser")
    with signed_in(hub, token) as client:
        ((name, value),) = client.cookies.items()
        assert name == f"zoo_session_{hub.url.rsplit(':', 1)[1]}"
        assert token not in value and token.removeprefix("hf_zoo_") not in value
        assert client.get("/api/whoami-v2").status_code == 401  # the API ignores it
        r = client.post("/api/repos/create", json={"name": "x", "organization": "sessionuser"})
        assert r.status_code == 401
    expiry, digest, signature = value.split(".")
    forged = [f"{int(expiry) + 99}.{digest}.{signature}", f"{expiry}.{'0' * 64}.{signature}",
              f"1.{digest}.{signature}", "garbage", token]  # fmt: skip
    for bad in forged:
        assert get(hub, "/", cookies={name: bad}).status_code == 200
        assert "sessionuser" not in get(hub, "/", cookies={name: bad}).text


def test_pull_request_page_shows_its_files(hub, repo):  # noqa: F811
    api = hub.api()
    info = api.create_commit(repo, [CommitOperationAdd("new.txt", b"new file")],
                             commit_message="propose new.txt", create_pr=True)  # fmt: skip
    num = info.pr_num
    listing = get(hub, f"/{repo}/discussions").text
    assert "propose new.txt" in listing and "pull request" in listing
    text = get(hub, f"/{repo}/discussions/{num}").text
    assert "new.txt" in text and "added" in text


def test_a_moved_repo_redirects(hub):  # noqa: F811
    api = hub.api()
    api.create_repo("web/old-name", exist_ok=True)
    api.move_repo("web/old-name", "web/new-name")
    r = get(hub, "/web/old-name/tree/main")
    assert r.status_code == 307 and r.headers["location"].endswith("/web/new-name/tree/main")


def test_dataset_pages(hub):  # noqa: F811
    api = hub.api()
    api.create_repo("web/a-dataset", repo_type="dataset", exist_ok=True)
    api.upload_file(path_or_fileobj=io.BytesIO(b"a,b\n1,2\n"), path_in_repo="data.csv",
                    repo_id="web/a-dataset", repo_type="dataset")  # fmt: skip
    assert "web/a-dataset" in get(hub, "/datasets").text
    assert get(hub, "/datasets/web/a-dataset").status_code == 200
    assert "a,b" in get(hub, "/datasets/web/a-dataset/blob/main/data.csv").text
    assert get(hub, "/web/a-dataset").status_code == 404  # a dataset is not a model


def test_sign_in_forms_from_other_sites_are_refused(hub):  # noqa: F811
    token = hub.add_token("csrfvictim")
    for path in ("/login", "/logout"):
        r = httpx2.post(f"{hub.url}{path}", data={"token": token},
                        headers={"origin": "https://evil.example"})  # fmt: skip
        assert r.status_code == 403 and "set-cookie" not in r.headers
    r = httpx2.post(f"{hub.url}/login", data={"token": token}, headers={"origin": hub.url})
    assert r.status_code == 303


def test_resolve_serves_user_files_sandboxed(hub, repo):  # noqa: F811
    r = get(hub, f"/{repo}/resolve/main/evil.html")
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in r.headers["content-security-policy"]


def test_a_signed_in_browser_downloads_private_files(hub):  # noqa: F811
    token = hub.add_token("downloader")
    api = hub.api(token)
    api.create_repo("downloader/private-files", private=True, exist_ok=True)
    api.upload_file(path_or_fileobj=b"weights", path_in_repo="w.bin",
                    repo_id="downloader/private-files")  # fmt: skip
    url = "/downloader/private-files/resolve/main/w.bin"
    assert get(hub, url).status_code == 404
    with signed_in(hub, token) as client:
        assert client.get(url).content == b"weights"


def test_links_at_a_revision_with_a_slash_work(hub, repo):  # noqa: F811
    import re

    hub.api().create_branch(repo, branch="feature/x")
    text = get(hub, f"/{repo}/tree/feature%2Fx").text
    links = set(re.findall(r'href="(/[^"]+)"', text))
    assert f"/{repo}/tree/feature%2Fx/sub" in links
    assert f"/{repo}/blob/feature%2Fx/README.md" in links
    for link in links:
        if link.startswith(f"/{repo}/") and "/discussions" not in link:
            assert get(hub, link).status_code == 200, link


def test_odd_zoo_json_values_never_break_the_page(hub):  # noqa: F811
    api = hub.api()
    api.create_repo("web/odd-zoo", exist_ok=True)
    odd = {"kind": ["bag"], "training": "str", "labels": "x", "parents": 5, "base_model": 3}
    api.upload_file(path_or_fileobj=json.dumps(odd).encode(), path_in_repo="zoo.json",
                    repo_id="web/odd-zoo")  # fmt: skip
    for path in ("", "/tree/main", "/tree-of-models"):
        assert get(hub, f"/web/odd-zoo{path}").status_code == 200, path


def test_hub_list_filters_and_author(hub, repo):  # noqa: F811
    ns, name = repo.split("/")
    assert repo in get(hub, "/models?library=sentence-transformers").text
    assert repo in get(hub, "/models?license=apache-2.0").text
    assert repo not in get(hub, "/models?license=mit").text
    assert repo in get(hub, f"/models?author={ns}").text
    assert repo not in get(hub, f"/models?author={ns}x").text


def test_huge_and_deeply_nested_cards_stay_fast(hub):  # noqa: F811
    import time

    api = hub.api()
    for repo_id, body in (("web/deep-card", "<div>" * 100_000), ("web/long-card", "x " * 200_000)):
        api.create_repo(repo_id, exist_ok=True)
        api.upload_file(path_or_fileobj=body.encode(), path_in_repo="README.md", repo_id=repo_id)
        start = time.perf_counter()
        r = get(hub, f"/{repo_id}")
        assert r.status_code == 200 and time.perf_counter() - start < 2


def test_a_file_history_lists_only_the_commits_that_changed_it(hub):  # noqa: F811
    api = hub.api()
    api.create_repo("web/history", exist_ok=True)
    for i, name in enumerate(["a.txt", "b.txt", "a.txt"]):
        api.upload_file(path_or_fileobj=f"v{i}".encode(), path_in_repo=name,
                        repo_id="web/history", commit_message=f"change {i} {name}")  # fmt: skip
    text = get(hub, "/web/history/commits/main/a.txt").text
    assert "change 0 a.txt" in text and "change 2 a.txt" in text and "change 1 b.txt" not in text
    assert 'href="/web/history/commits/main/a.txt"' in get(hub, "/web/history/blob/main/a.txt").text


def test_a_namespace_link_lists_its_models(hub, repo):  # noqa: F811
    ns = repo.split("/")[0]
    r = get(hub, f"/{ns}")
    assert r.status_code == 302 and r.headers["location"] == f"/models?author={ns}"
    assert repo in get(hub, f"/{ns}", follow_redirects=True).text
