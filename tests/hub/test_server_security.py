"""Access control, proof of possession for LFS objects, path rules, integrity, concurrency."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError


@pytest.fixture(scope="module")
def users(hub):
    """Tokens of two users and a read-only token, registered once for the module."""
    suffix = os.urandom(4).hex()
    alice, bob = f"alice-{suffix}", f"bob-{suffix}"
    return {
        "alice": (alice, hub.add_token(alice, write=True)),
        "bob": (bob, hub.add_token(bob, write=True)),
        "reader": (alice, hub.add_token(alice, write=False)),
    }


def bearer(token: str | None) -> dict:
    return {"authorization": f"Bearer {token}"} if token else {}


def ndjson(*items: dict) -> bytes:
    return b"".join(json.dumps(i).encode() + b"\n" for i in items)


def header(summary="test", parent=None) -> dict:
    value = {"summary": summary, "description": ""}
    if parent:
        value["parentCommit"] = parent
    return {"key": "header", "value": value}


def post_commit(hub, repo_id, token, *ops, parent=None, branch="main"):
    return httpx2.post(
        f"{hub.url}/api/models/{repo_id}/commit/{branch}",
        content=ndjson(header(parent=parent), *ops),
        headers={**bearer(token), "content-type": "application/x-ndjson"},
    )


def lfs_batch(hub, repo_id, token, oid, size):
    return httpx2.post(
        f"{hub.url}/{repo_id}.git/info/lfs/objects/batch",
        json={
            "operation": "upload",
            "transfers": ["basic"],
            "objects": [{"oid": oid, "size": size}],
            "hash_algo": "sha256",
        },
        headers={**bearer(token), "accept": "application/vnd.git-lfs+json"},
    )


def test_private_repo_is_invisible_to_others(hub, users):
    alice, alice_token = users["alice"]
    bob_token = users["bob"][1]
    repo_id = f"{alice}/secret"
    api = hub.api(alice_token)
    api.create_repo(repo_id, private=True)
    api.upload_file(path_or_fileobj=b"classified", path_in_repo="s.txt", repo_id=repo_id)
    assert api.model_info(repo_id).private is True
    assert hub.api().repo_exists(repo_id)  # the admin sees everything
    for other in (HfApi(endpoint=hub.url, token=False), hub.api(bob_token)):
        assert not other.repo_exists(repo_id)
        with pytest.raises(RepositoryNotFoundError):
            other.list_repo_files(repo_id)
        assert [m.id for m in other.list_models(author=alice)] == []
    assert [m.id for m in api.list_models(author=alice) if m.id == repo_id] == [repo_id]
    for token in (None, bob_token):
        r = httpx2.get(f"{hub.url}/{repo_id}/resolve/main/s.txt", headers=bearer(token))
        assert r.status_code == 404 and r.headers["x-error-code"] == "RepoNotFound"
        assert b"classified" not in r.content
        r = httpx2.get(f"{hub.url}/api/models/{repo_id}/tree/main", headers=bearer(token))
        assert r.status_code == 404 and r.headers["x-error-code"] == "RepoNotFound"
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(repo_id, "s.txt", endpoint=hub.url, token=bob_token)
    # bob cannot write it either, and learns nothing: 404, not 403
    r = post_commit(hub, repo_id, bob_token, {"key": "deletedFile", "value": {"path": "s.txt"}})
    assert r.status_code == 404 and r.headers["x-error-code"] == "RepoNotFound"


def test_writes_need_a_token_and_ownership(hub, users):
    alice, alice_token = users["alice"]
    bob, bob_token = users["bob"]
    repo_id = f"{alice}/public"
    hub.api(alice_token).create_repo(repo_id)
    anonymous = HfApi(endpoint=hub.url, token=False)
    with pytest.raises(HfHubHTTPError):
        anonymous.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    r = post_commit(hub, repo_id, None, {"key": "deletedFile", "value": {"path": ".gitattributes"}})
    assert r.status_code == 401 and r.headers["x-error-code"] == "Unauthorized"
    r = httpx2.post(f"{hub.url}/api/repos/create", json={"name": "x", "organization": bob})
    assert r.status_code == 401
    with pytest.raises(HfHubHTTPError) as err:
        hub.api(bob_token).upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    assert err.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as err:
        hub.api(users["reader"][1]).upload_file(
            path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id
        )
    assert err.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as err:  # bob may not create in alice's namespace
        hub.api(bob_token).create_repo(f"{alice}/intruder")
    assert err.value.response.status_code == 403
    team = f"team-{os.urandom(3).hex()}"
    hub.api(bob_token).create_repo(f"{team}/first")  # first creator claims the namespace
    with pytest.raises(HfHubHTTPError) as err:
        hub.api(alice_token).create_repo(f"{team}/second")
    assert err.value.response.status_code == 403
    hub.api().create_repo(f"{team}/by-admin")  # the admin writes everywhere
    hub.api().upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)


def test_bad_token_is_invalid_credentials(hub):
    r = httpx2.get(f"{hub.url}/api/models", headers=bearer("hf_zoo_not-a-token"))
    assert r.status_code == 401
    assert r.headers["x-error-message"] == "Invalid credentials in Authorization header"
    assert r.json()["error"] == "Invalid credentials in Authorization header"


def test_lfs_objects_are_scoped_to_the_repo_that_uploaded_them(hub, users):
    alice, alice_token = users["alice"]
    bob, bob_token = users["bob"]
    data = os.urandom(4096)
    oid = hashlib.sha256(data).hexdigest()
    hub.api(alice_token).create_repo(f"{alice}/weights", private=True)
    hub.api(alice_token).upload_file(
        path_or_fileobj=data, path_in_repo="w.bin", repo_id=f"{alice}/weights"
    )
    assert (
        lfs_batch(hub, f"{alice}/weights", alice_token, oid, len(data))
        .json()["objects"][0]
        .get("actions")
        is None
    )
    hub.api(bob_token).create_repo(f"{bob}/thief")
    answer = lfs_batch(hub, f"{bob}/thief", bob_token, oid, len(data)).json()["objects"][0]
    assert "upload" in answer["actions"]  # not "present": bob must prove he has the bytes
    r = post_commit(
        hub,
        f"{bob}/thief",
        bob_token,
        {
            "key": "lfsFile",
            "value": {"path": "w.bin", "algo": "sha256", "oid": oid, "size": len(data)},
        },
    )
    assert r.status_code == 422 and r.headers["x-error-code"] == "LfsObjectNotFound"
    r = httpx2.post(
        answer["actions"]["verify"]["href"],
        json={"oid": oid, "size": len(data)},
        headers=bearer(bob_token),
    )
    assert r.status_code == 404
    # uploading the real bytes is proof of possession: then it may be committed
    assert httpx2.put(answer["actions"]["upload"]["href"], content=data).status_code == 200
    r = post_commit(
        hub,
        f"{bob}/thief",
        bob_token,
        {
            "key": "lfsFile",
            "value": {"path": "w.bin", "algo": "sha256", "oid": oid, "size": len(data)},
        },
    )
    assert r.status_code == 200, r.text


def test_upload_must_match_its_sha256_and_signature(hub, users):
    alice, token = users["alice"]
    repo_id = f"{alice}/integrity"
    hub.api(token).create_repo(repo_id)
    data = os.urandom(2048)
    oid = hashlib.sha256(data).hexdigest()
    href = lfs_batch(hub, repo_id, token, oid, len(data)).json()["objects"][0]["actions"]["upload"][
        "href"
    ]
    wrong = httpx2.put(href, content=os.urandom(2048))
    assert wrong.status_code == 400 and wrong.headers["x-error-code"] == "ObjectMismatch"
    assert httpx2.put(href, content=data[:-1]).status_code == 400  # short
    assert httpx2.put(href, content=data + b"!").status_code == 400  # long
    parts = urlsplit(href)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    tampered = {**query, "sig": ("0" if query["sig"][0] != "0" else "1") + query["sig"][1:]}
    r = httpx2.put(
        f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(tampered)}", content=data
    )
    assert r.status_code == 403 and r.headers["x-error-code"] == "Forbidden"
    other_size = parts.path.rsplit("/", 1)[0] + "/2049"
    assert (
        httpx2.put(
            f"{parts.scheme}://{parts.netloc}{other_size}?{parts.query}", content=data + b"!"
        ).status_code
        == 403
    )
    expired = {**query, "exp": "1000"}
    assert (
        httpx2.put(
            f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(expired)}", content=data
        ).status_code
        == 403
    )
    r = post_commit(
        hub,
        repo_id,
        token,
        {"key": "lfsFile", "value": {"path": "d.bin", "oid": oid, "size": len(data)}},
    )
    assert r.status_code == 422  # nothing was stored by the refused uploads
    assert httpx2.put(href, content=data).status_code == 200
    assert (
        post_commit(
            hub,
            repo_id,
            token,
            {"key": "lfsFile", "value": {"path": "d.bin", "oid": oid, "size": len(data)}},
        ).status_code
        == 200
    )
    store_path = hub.root / "objects" / oid[:2] / oid
    assert hashlib.sha256(store_path.read_bytes()).hexdigest() == oid


@pytest.mark.parametrize(
    "path",
    [
        "../evil.txt",
        "/abs.txt",
        "a//b.txt",
        "a/./b.txt",
        ".git/config",
        "x/.git/hooks/h",
        "a\\b.txt",
        "x/../../y",
        "nul\x00byte",
        "",
        "a/" + "b" * 300,
        "c/" * 600 + "d",
    ],
)
def test_bad_paths_are_refused(hub, users, path):
    alice, token = users["alice"]
    repo_id = f"{alice}/paths"
    hub.api(token).create_repo(repo_id, exist_ok=True)
    content = base64.b64encode(b"x").decode()
    r = post_commit(
        hub,
        repo_id,
        token,
        {"key": "file", "value": {"path": path, "content": content, "encoding": "base64"}},
    )
    assert r.status_code == 422 and r.headers["x-error-code"] == "InvalidPath", r.text
    assert r.json()["error"]


def test_traversal_in_urls_reads_nothing_outside_the_repo(hub, users):
    alice, token = users["alice"]
    repo_id = f"{alice}/paths"
    hub.api(token).create_repo(repo_id, exist_ok=True)
    for raw in ("..%2F..%2Fhub.json", "%2E%2E/%2E%2E/admin.token", ".git%2Fconfig", "a%5Cb"):
        r = httpx2.get(f"{hub.url}/{repo_id}/resolve/main/{raw}", headers=bearer(token))
        assert r.status_code in (400, 404) and r.headers["x-error-code"] in (
            "InvalidPath",
            "EntryNotFound",
            "NotFound",
        )
        assert hub.admin_token.encode() not in r.content


def test_stale_parent_commit_is_refused(hub, users):
    alice, token = users["alice"]
    api, repo_id = hub.api(token), f"{alice}/parents"
    api.create_repo(repo_id)
    first = api.upload_file(path_or_fileobj=b"1", path_in_repo="a.txt", repo_id=repo_id).oid
    api.upload_file(path_or_fileobj=b"2", path_in_repo="a.txt", repo_id=repo_id)
    with pytest.raises(HfHubHTTPError) as err:
        api.create_commit(
            repo_id, [CommitOperationAdd("b.txt", b"b")], commit_message="late", parent_commit=first
        )
    assert err.value.response.status_code == 412
    assert err.value.response.headers["x-error-code"] == "PreconditionFailed"


def test_concurrent_commits_without_parent_lose_nothing(hub, users):
    alice, token = users["alice"]
    api, repo_id = hub.api(token), f"{alice}/race"
    api.create_repo(repo_id)
    before = len(api.list_repo_commits(repo_id))

    def commit(i: int) -> str:
        ops = [CommitOperationAdd(f"f{i:02d}.txt", f"file {i}".encode())]
        return api.create_commit(repo_id, ops, commit_message=f"c{i}").oid

    with ThreadPoolExecutor(16) as pool:
        oids = list(pool.map(commit, range(16)))
    assert len(set(oids)) == 16
    files = set(api.list_repo_files(repo_id))
    assert {f"f{i:02d}.txt" for i in range(16)} <= files
    history = api.list_repo_commits(repo_id)
    assert len(history) == before + 16 and {c.commit_id for c in history} >= set(oids)


def test_concurrent_commits_with_the_same_parent_one_wins(hub, users):
    alice, token = users["alice"]
    api, repo_id = hub.api(token), f"{alice}/race-parent"
    api.create_repo(repo_id)
    parent = api.model_info(repo_id).sha

    def commit(i: int) -> int:
        ops = [CommitOperationAdd(f"g{i}.txt", b"x")]
        try:
            api.create_commit(repo_id, ops, commit_message=f"g{i}", parent_commit=parent)
            return 200
        except HfHubHTTPError as exc:
            return exc.response.status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(commit, range(16)))
    assert sorted(statuses) == [200] + [412] * 15
    assert len(api.list_repo_commits(repo_id)) == 2


def test_no_token_is_stored_in_plaintext(hub, users):
    plaintexts = [t for _, t in users.values()] + [hub.add_token("late-user", write=True)]
    for path in hub.root.rglob("*"):
        if path.is_file() and path.name != "admin.token":
            content = path.read_bytes()
            for token in plaintexts + [hub.admin_token]:
                assert token.encode() not in content, path
    assert stat.S_IMODE((hub.root / "admin.token").stat().st_mode) == 0o600
    assert stat.S_IMODE((hub.root / "auth" / "tokens.json").stat().st_mode) == 0o600
    assert (hub.root / "admin.token").read_text().strip() == hub.admin_token
