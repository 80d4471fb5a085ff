"""Raw HTTP behaviour the client depends on: headers, Range, ETags, error codes, limits."""

from __future__ import annotations

import hashlib
import os

import httpx2
import pytest
from huggingface_hub import HfApi

from zoo.hub.server import HubStore, serve_in_thread


@pytest.fixture(scope="module")
def files(hub):
    """A repo with one regular and one LFS file: (repo_id, regular bytes, lfs bytes, commit)."""
    repo_id = f"http-{os.urandom(4).hex()}/r"
    regular, lfs = b"0123456789" * 100, os.urandom(300_000)
    api = hub.api()
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=regular, path_in_repo="dir/plain.txt", repo_id=repo_id)
    commit = api.upload_file(path_or_fileobj=lfs, path_in_repo="w.safetensors", repo_id=repo_id).oid
    return repo_id, regular, lfs, commit


def test_head_headers_for_regular_and_lfs_files(hub, files):
    repo_id, regular, lfs, commit = files
    r = httpx2.head(f"{hub.url}/{repo_id}/resolve/main/dir/plain.txt")
    assert r.status_code == 200 and r.headers["x-repo-commit"] == commit
    git_oid = hashlib.sha1(b"blob %d\0" % len(regular) + regular).hexdigest()
    assert r.headers["etag"] == f'"{git_oid}"'
    assert r.headers["content-length"] == str(len(regular)) and "x-linked-etag" not in r.headers
    r = httpx2.head(f"{hub.url}/{repo_id}/resolve/{commit}/w.safetensors")
    sha = hashlib.sha256(lfs).hexdigest()
    assert r.headers["etag"] == r.headers["x-linked-etag"] == f'"{sha}"'
    assert r.headers["x-linked-size"] == r.headers["content-length"] == str(len(lfs))
    assert not [h for h in r.headers if h.lower().startswith("x-xet")]
    assert httpx2.get(f"{hub.url}/{repo_id}/resolve/main/w.safetensors").content == lfs


def test_range_requests(hub, files):
    repo_id, _, lfs, _ = files
    url = f"{hub.url}/{repo_id}/resolve/main/w.safetensors"
    r = httpx2.get(url, headers={"range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == lfs[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{len(lfs)}"
    r = httpx2.get(url, headers={"range": "bytes=1000-"})
    assert r.status_code == 206 and r.content == lfs[1000:]
    r = httpx2.get(url, headers={"range": "bytes=-10"})
    assert r.status_code == 206 and r.content == lfs[-10:]
    r = httpx2.get(url, headers={"range": f"bytes={len(lfs) - 5}-{len(lfs) + 100}"})
    assert r.status_code == 206 and r.content == lfs[-5:]
    r = httpx2.get(url, headers={"range": f"bytes={len(lfs)}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(lfs)}"
    assert r.headers["x-error-code"] == "RangeNotSatisfiable"
    r = httpx2.get(
        url, headers={"range": "bytes=0-1,5-6"}
    )  # multiple ranges: whole file is allowed
    assert r.status_code == 200 and r.content == lfs


def test_error_codes_on_404s(hub, files):
    repo_id, _, _, commit = files
    r = httpx2.head(f"{hub.url}/{repo_id}/resolve/main/missing.txt")
    assert r.status_code == 404 and r.headers["x-error-code"] == "EntryNotFound"
    assert r.headers["x-repo-commit"] == commit
    r = httpx2.get(f"{hub.url}/{repo_id}/resolve/nope/dir/plain.txt")
    assert r.status_code == 404 and r.headers["x-error-code"] == "RevisionNotFound"
    assert r.json()["error"]
    r = httpx2.get(f"{hub.url}/api/models/{repo_id}-x")
    assert r.headers["x-error-code"] == "RepoNotFound" and r.json()["error"]
    r = httpx2.get(f"{hub.url}/api/models/{repo_id}/revision/{'0' * 40}")
    assert r.headers["x-error-code"] == "RevisionNotFound"
    r = httpx2.get(f"{hub.url}/api/nothing-here")
    assert r.status_code == 404 and r.headers["x-error-code"] == "NotFound" and r.json()["error"]
    r = httpx2.delete(f"{hub.url}/api/models/{repo_id}/refs")
    assert r.status_code == 405 and r.headers["x-error-code"] == "MethodNotAllowed"
    r = httpx2.request("PATCH", f"{hub.url}/api/models/{repo_id}")
    assert r.status_code == 405 and r.headers["x-error-code"] and r.json()["error"]


def test_internal_errors_carry_error_headers(tmp_path):
    root = tmp_path / "hub"
    store = HubStore(root)
    store.repos.create("model", "broken/r", "admin", False, "admin")
    next((root / "repos" / "model").glob("*.json")).write_text("{not json")
    with serve_in_thread(root) as url:
        r = httpx2.get(f"{url}/api/models/broken/r")
    assert r.status_code == 500 and r.headers["x-error-code"] == "InternalError"
    assert "internal server error" in r.json()["error"]


def test_git_lfs_uploads_are_served_without_xet_headers(hub, files):
    """Files that came through git-lfs have no Xet form here: /resolve and /tree say nothing of
    Xet, so even a client with hf_xet installed downloads them over plain HTTP."""
    repo_id = files[0]
    tree = httpx2.get(f"{hub.url}/api/models/{repo_id}/tree/main?recursive=true").json()
    assert tree and all("xetHash" not in e for e in tree)
    lfs = [e["path"] for e in tree if "lfs" in e]
    assert lfs
    r = httpx2.head(f"{hub.url}/{repo_id}/resolve/main/{lfs[0]}")
    assert r.status_code == 200 and "x-xet-hash" not in r.headers and "link" not in r.headers


def test_tree_pages_and_commit_in_other_repo_is_unknown(tmp_path, hub, files):
    root = tmp_path / "hub"
    with serve_in_thread(root, tree_page_size=2) as url:
        api = HfApi(endpoint=url, token=HubStore(root).admin_token())
        api.create_repo("t/r")
        api.upload_folder(repo_id="t/r", folder_path=_folder(tmp_path, 5))
        assert (
            len(list(api.list_repo_tree("t/r", recursive=True))) == 7
        )  # 5 files, 1 dir, .gitattributes
        first = httpx2.get(f"{url}/api/models/t/r/tree/main", params={"recursive": "true"})
        assert "recursive=true" in first.links["next"]["url"]
    # a commit id of one repo is not a revision of another repo
    r = httpx2.get(f"{hub.url}/api/models/{files[0]}/revision/{files[3]}")
    assert r.status_code == 200
    other = f"http-{os.urandom(4).hex()}/other"
    hub.api().create_repo(other)
    r = httpx2.get(f"{hub.url}/api/models/{other}/revision/{files[3]}")
    assert r.status_code == 404 and r.headers["x-error-code"] == "RevisionNotFound"


def _folder(tmp_path, n):
    folder = tmp_path / "many"
    (folder / "d").mkdir(parents=True)
    for i in range(n - 1):
        (folder / f"f{i}.txt").write_text(str(i))
    (folder / "d" / "x.txt").write_text("x")
    return folder


def test_validate_yaml(hub):
    ok = httpx2.post(
        f"{hub.url}/api/validate-yaml",
        json={"content": "---\nlicense: mit\n---\nhi", "repoType": "model"},
    )
    assert ok.status_code == 200 and ok.json() == {"errors": [], "warnings": []}
    bad = httpx2.post(
        f"{hub.url}/api/validate-yaml",
        json={"content": "---\nlicense: [mit\n---\n", "repoType": "model"},
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["message"]
    assert bad.headers["x-error-code"] == "InvalidYaml"


def test_body_limits_and_bad_json(tmp_path):
    root = tmp_path / "hub"
    with serve_in_thread(root, max_body_bytes=1000, max_commit_bytes=2000) as url:
        token = HubStore(root).admin_token()
        auth = {"authorization": f"Bearer {token}"}
        r = httpx2.post(f"{url}/api/repos/create", content=b"{" + b" " * 2000 + b"}", headers=auth)
        assert r.status_code == 413 and r.headers["x-error-code"] == "PayloadTooLarge"
        r = httpx2.post(f"{url}/api/repos/create", content=b"not json", headers=auth)
        assert r.status_code == 400 and r.headers["x-error-code"] == "BadRequest"
        r = httpx2.post(f"{url}/api/repos/create", json={"name": 5}, headers=auth)
        assert r.status_code == 400 and "name" in r.json()["error"]
        assert (
            httpx2.post(
                f"{url}/api/repos/create", json={"name": "r", "organization": "o"}, headers=auth
            ).status_code
            == 200
        )
        big_line = b'{"key":"header","value":{"summary":"' + b"x" * 3000 + b'"}}\n'
        r = httpx2.post(f"{url}/api/models/o/r/commit/main", content=big_line, headers=auth)
        assert r.status_code == 413


def test_paths_info_form_encoded(hub, files):
    repo_id = files[0]
    r = httpx2.post(
        f"{hub.url}/api/models/{repo_id}/paths-info/main",
        data={"paths": ["dir/plain.txt", "dir", "nope", "../x"], "expand": "False"},
    )
    assert r.status_code == 200
    assert [(e["type"], e["path"]) for e in r.json()] == [
        ("file", "dir/plain.txt"),
        ("directory", "dir"),
    ]
