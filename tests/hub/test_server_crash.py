"""SIGKILL the server mid-commit and mid-upload: every repo stays at its old or its new commit.

The server runs as `python -m zoo.hub.server` in a subprocess (conftest.ServerProcess) and is
killed with SIGKILL, so no cleanup code of any kind runs. After each kill the store is audited
directly on disk, the server is restarted on the same root, and the client's retry must succeed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from zoo.hub.server import HubStore
from zoo.hub.server import commits as C
from zoo.hub.server import xet_format as X
from zoo.hub.server.fsutil import git_blob_sha1

FILES_PER_COMMIT, FILE_BYTES = 6, 300_000
REPO_ROOT = Path(__file__).resolve().parents[2]


def audit(root) -> dict[str, dict]:
    """Check every repo on disk; return {repo_id: head commit of main}.

    Every ref names a stored commit of that repo, every ancestor is stored, and every file of
    every reachable commit is stored, complete, and hashes to its recorded sha256 (and git oid).
    """
    store = HubStore(root)
    heads, hashed = {}, {}
    for repo_type in ("model", "dataset"):
        for state in store.repos.all(repo_type):
            for cid in [*state["branches"].values(), *state["tags"].values()]:
                for commit in store.repos.history(state, cid):
                    assert commit["repo"] == state["uid"]
                    for path, entry in commit["tree"].items():
                        oid = entry["sha256"]
                        if oid not in hashed:
                            data = store.objects.path(oid).read_bytes()
                            hashed[oid] = (
                                hashlib.sha256(data).hexdigest(),
                                len(data),
                                git_blob_sha1(data),
                            )
                        assert hashed[oid][:2] == (oid, entry["size"]), (path, oid)
                        if not entry["lfs"]:
                            assert hashed[oid][2] == entry["oid"]
            heads[state["id"]] = store.repos.get_commit(state["branches"]["main"])
    return heads


def content(k: int, j: int) -> bytes:
    """Deterministic, incompressible-enough bytes of file j of commit k."""
    seed = hashlib.sha256(f"{k}-{j}".encode()).digest()
    return (seed * (FILE_BYTES // len(seed) + 1))[:FILE_BYTES]


def operations(k: int) -> list[CommitOperationAdd]:
    ops = [CommitOperationAdd(f"c{k}/f{j}.bin.txt", content(k, j)) for j in range(FILES_PER_COMMIT)]
    return ops + [CommitOperationAdd("counter.txt", str(k).encode())]


def check_all_or_nothing(root, head: dict) -> int:
    """The head's tree holds exactly the files of commits 1..counter: no partial commit."""
    tree = head["tree"]
    counter = 0
    if "counter.txt" in tree:
        counter = int(HubStore(root).objects.path(tree["counter.txt"]["sha256"]).read_bytes())
    for k in range(1, counter + 1):
        for j in range(FILES_PER_COMMIT):
            assert f"c{k}/f{j}.bin.txt" in tree
    assert not any(p.startswith(f"c{counter + 1}/") for p in tree)
    return counter


def raw_commit(url: str, token: str, k: int) -> str:
    """One commit of operations(k) as the client's NDJSON, without the client's retries."""
    lines = [{"key": "header", "value": {"summary": f"k{k}", "description": ""}}]
    for op in operations(k):
        data = base64.b64encode(op.path_or_fileobj).decode()
        lines.append(
            {
                "key": "file",
                "value": {"path": op.path_in_repo, "content": data, "encoding": "base64"},
            }
        )
    r = httpx2.post(
        f"{url}/api/models/crash/commits/commit/main",
        content=b"".join(json.dumps(line).encode() + b"\n" for line in lines),
        headers={"authorization": f"Bearer {token}", "content-type": "application/x-ndjson"},
        timeout=30,
    )
    r.raise_for_status()
    return r.json()["commitOid"]


def test_sigkill_during_commits_keeps_every_repo_consistent(server_process):
    server = server_process.start()
    token = HubStore(server.root).admin_token()
    HfApi(endpoint=server.url, token=token).create_repo("crash/commits")
    acked: list[str] = []  # commits the server confirmed: they must survive any crash
    rng = random.Random(1234)
    next_k, interrupted = 1, 0
    for _round in range(6):
        stop, state = threading.Event(), {"k": next_k}

        def committer(stop: threading.Event, state: dict) -> None:
            while not stop.is_set():
                try:
                    acked.append(raw_commit(server.url, token, state["k"]))
                except httpx2.HTTPError:  # the server died under us
                    return
                state["k"] += 1

        thread = threading.Thread(target=committer, args=(stop, state))
        thread.start()
        time.sleep(rng.uniform(0.2, 0.8))
        server.kill()
        stop.set()
        thread.join(30)
        head = audit(server.root)["crash/commits"]
        counter = check_all_or_nothing(server.root, head)
        # old or new: the head is the last confirmed commit, or the one that was in flight
        assert counter in (state["k"] - 1, state["k"])
        store = HubStore(server.root)
        history = {
            c["id"] for c in store.repos.history(store.repos.load("model", "crash/commits"), "main")
        }
        assert set(acked) <= history  # nothing confirmed was lost
        next_k = counter + 1
        server.start()
        if counter == state["k"] - 1:  # the interrupted commit did not land: the client retries it
            interrupted += 1
            api = HfApi(endpoint=server.url, token=token)
            acked.append(
                api.create_commit("crash/commits", operations(next_k), commit_message="retry").oid
            )
            next_k += 1
    assert next_k > 6, "the commits never got going"
    assert check_all_or_nothing(server.root, audit(server.root)["crash/commits"]) == next_k - 1


def test_sigkill_during_lfs_upload(server_process):
    server = server_process.start()
    token = HubStore(server.root).admin_token()
    api = HfApi(endpoint=server.url, token=token)
    api.create_repo("crash/lfs")
    before = api.model_info("crash/lfs").sha
    data = os.urandom(24 << 20)
    oid, size = hashlib.sha256(data).hexdigest(), len(data)
    batch = httpx2.post(
        f"{server.url}/crash/lfs.git/info/lfs/objects/batch",
        json={
            "operation": "upload",
            "objects": [{"oid": oid, "size": size}],
            "hash_algo": "sha256",
        },
        headers={"authorization": f"Bearer {token}"},
    ).json()
    href = batch["objects"][0]["actions"]["upload"]["href"]
    sent = threading.Event()

    def slow_body():
        for i in range(0, size, 1 << 20):
            yield data[i : i + (1 << 20)]
            if i >= size // 2:
                sent.set()
                time.sleep(0.2)

    def upload():
        try:
            httpx2.put(href, content=slow_body(), headers={"content-length": str(size)}, timeout=60)
        except httpx2.HTTPError:
            pass

    thread = threading.Thread(target=upload)
    thread.start()
    assert sent.wait(30)
    server.kill()
    thread.join(60)
    store = HubStore(server.root)
    assert not store.objects.path(oid).exists()  # no partial object was ever published
    assert oid not in store.repos.load("model", "crash/lfs")["lfs"]
    assert audit(server.root)["crash/lfs"]["id"] == before
    server.start()
    api = HfApi(endpoint=server.url, token=token)
    commit = api.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id="crash/lfs").oid
    assert audit(server.root)["crash/lfs"]["id"] == commit
    assert HubStore(server.root).objects.hash_file(oid) == oid
    r = httpx2.get(f"{server.url}/crash/lfs/resolve/main/w.bin", timeout=60)
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == oid


CRASH_AT = """
import os, signal, sys
from pathlib import Path
from zoo.hub.server import HubStore, repos, fsutil
from zoo.hub.server import commits as C

point = sys.argv[2]
real_atomic_write, real_put_commit = fsutil.atomic_write, repos.RepoStore.put_commit

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def put_commit(self, commit):
    if point == "before-commit-object":
        die()
    real_put_commit(self, commit)

def atomic_write(path, data, mode=0o644):
    if point == "state-tmp-written":  # tmp written and fsynced, not yet renamed
        tmp = fsutil._write_tmp(path, data, mode)
        die()
    real_atomic_write(path, data, mode)
    if point == "state-replaced":
        die()

repos.RepoStore.put_commit = put_commit
repos.atomic_write = atomic_write
store = HubStore(Path(sys.argv[1]))
state = store.repos.load("model", "crash/points")
data = b"new content"
sha = store.objects.put_bytes(data)
ops = [("add", "new.txt", C.regular_entry(sha, data))]
store.repos.commit("model", "crash/points", "main", ops,
                   {"summary": "new", "description": ""}, "admin", state["uid"])
"""


@pytest.mark.parametrize(
    "point, lands",
    [("before-commit-object", False), ("state-tmp-written", False), ("state-replaced", True)],
)
def test_sigkill_at_each_step_of_a_commit(tmp_path, point, lands):
    root = tmp_path / "hub"
    store = HubStore(root)
    old = store.repos.create("model", "crash/points", "admin", False, "admin")["branches"]["main"]
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_AT, str(root), point],
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.returncode == -signal.SIGKILL
    head = audit(root)["crash/points"]
    assert ("new.txt" in head["tree"]) is lands
    assert (head["id"] != old) is lands
    if not lands:
        assert head["id"] == old
    # the store still works: the retried commit lands on top
    state = HubStore(root).repos.load("model", "crash/points")
    sha = store.objects.put_bytes(b"retry")
    HubStore(root).repos.commit(
        "model",
        "crash/points",
        "main",
        [("add", "r.txt", C.regular_entry(sha, b"retry"))],
        {"summary": "retry", "description": ""},
        "admin",
        state["uid"],
    )
    assert "r.txt" in audit(root)["crash/points"]["tree"]


XET_CRASH_AT = """
import os, signal, sys
from pathlib import Path
from tests.hub import xet_build as B
from zoo.hub.server import HubStore, objects, xet_store

point, root = sys.argv[2], Path(sys.argv[1])
real_publish, real_create = objects.BlobWriter.publish, xet_store.create_exclusive

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def publish(self):
    if point == "object-written":  # every byte rebuilt into the staging file, not published
        die()
    real_publish(self)

def create_exclusive(path, data, mode=0o644):
    if point == "object-published" and "sha256" in path.parts:  # before the sha256 -> file map
        die()
    return real_create(path, data, mode)

objects.BlobWriter.publish = publish
xet_store.create_exclusive = create_exclusive
store = HubStore(root)
state = store.repos.load("model", "crash/xet")
repo = (state["type"], state["id"], state["uid"])
x = B.xorb([bytes([i]) * 50_000 + os.urandom(10_000) for i in range(8)])
staged = store.xet.stage()
staged.write_bytes(x.data)
store.xet.put_staged_xorb(x.hash, staged, repo)
(root / "xorb.bin").write_bytes(x.data)
(root / "shard.bin").write_bytes(B.shard([{"terms": [B.Term(x, 0, 8)]}], [x]))
store.xet.put_shard((root / "shard.bin").read_bytes(), repo, 1 << 40)
"""


@pytest.mark.parametrize("point", ["object-written", "object-published"])
def test_sigkill_while_a_xet_shard_is_rebuilt(tmp_path, point):
    """Killed while the server rebuilds a file from its xorbs: the file is not usable in any
    commit (not linked), the repo is unchanged, and the client's retry of the shard succeeds."""
    root = tmp_path / "hub"
    store = HubStore(root)
    store.repos.create("model", "crash/xet", "admin", False, "admin")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", XET_CRASH_AT, str(root), point], env=env, capture_output=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    shard = X.parse_shard((root / "shard.bin").read_bytes())
    file = shard.files[0]
    store = HubStore(root)
    state = store.repos.load("model", "crash/xet")
    assert file.sha256 not in state["lfs"]
    assert store.xet.xet_hash_of(file.sha256) is None
    assert audit(root)["crash/xet"]["id"] == state["branches"]["main"]
    repo = (state["type"], state["id"], state["uid"])
    store.xet.put_shard((root / "shard.bin").read_bytes(), repo, 1 << 40)  # the client's retry
    assert file.sha256 in store.repos.load("model", "crash/xet")["lfs"]
    assert store.objects.hash_file(file.sha256) == file.sha256
    assert store.xet.xet_hash_of(file.sha256) == X.hash_hex(file.hash)
