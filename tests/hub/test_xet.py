"""Xet through the official client (hf_xet installed, Xet enabled as out of the box), and the
security of the Xet routes against forged xorbs, shards and tokens.

The suite runs with HF_HUB_DISABLE_XET=1 (tests/conftest.py), so the fixture `xet` turns the
runtime constant back off for a test; the subprocess tests run with no such variable at all.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import CommitOperationAdd, constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import HfHubHTTPError

from tests.hub import xet_build as B
from zoo.hub.server import xet_format as X
from zoo.hub.server.xet_store import XetStore

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def xet(monkeypatch):
    """Xet on, as for a user who did not set HF_HUB_DISABLE_XET; counts xorb range reads."""
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    reads = []
    original = XetStore.xorb_path

    def counting(self, xorb):
        reads.append(xorb)
        return original(self, xorb)

    monkeypatch.setattr(XetStore, "xorb_path", counting)
    return reads


def _xet_records(hub, sha: str) -> bool:
    return (hub.root / "xet" / "sha256" / sha[:2] / sha).is_file()


def test_upload_file_over_10_mb_round_trips_through_xet(hub, unique, tmp_path, xet):
    api, repo = hub.api(), f"admin/xet-big-{unique}"
    api.create_repo(repo)
    data = os.urandom(6 << 20) + bytes(6 << 20)  # 12 MiB: half noise, half zeros
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    api.upload_file(path_or_fileobj=str(path), path_in_repo="w/big.bin", repo_id=repo)
    sha = hashlib.sha256(data).hexdigest()
    assert _xet_records(hub, sha), "the upload did not come through Xet"
    assert api.model_info(repo, files_metadata=True).siblings[-1].lfs.sha256 == sha
    written = len(xet)
    out = hf_hub_download(repo, "w/big.bin", endpoint=hub.url, token=hub.admin_token)
    assert Path(out).read_bytes() == data
    assert len(xet) > written, "the download did not go through Xet"
    head = httpx2.head(f"{hub.url}/{repo}/resolve/main/w/big.bin", headers=_auth(hub))
    assert head.headers["x-xet-hash"] and 'rel="xet-auth"' in head.headers["link"]


def test_upload_folder_of_many_small_files_and_snapshot(hub, unique, tmp_path, xet):
    api, repo = hub.api(), f"admin/xet-many-{unique}"
    api.create_repo(repo)
    folder = tmp_path / "many"
    files = {f"part/{i:03d}.bin": os.urandom(3000 + 97 * i) for i in range(60)}
    files["README.md"] = b"---\nlicense: mit\n---\n# many small files\n"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    api.upload_folder(repo_id=repo, folder_path=str(folder))
    assert all(
        _xet_records(hub, hashlib.sha256(files[n]).hexdigest()) for n in files if "part" in n
    )
    tree = {e.path: e for e in api.list_repo_tree(repo, recursive=True) if hasattr(e, "xet_hash")}
    assert all(tree[n].xet_hash for n in files if "part" in n)  # the client skips the HEADs
    assert tree["README.md"].xet_hash is None
    out = Path(snapshot_download(repo, endpoint=hub.url, token=hub.admin_token))
    got = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert {k: v for k, v in got.items() if k != ".gitattributes"} == files


def test_create_commit_of_bytes_and_a_second_upload_dedups(hub, unique, xet):
    api, repo = hub.api(), f"admin/xet-bytes-{unique}"
    api.create_repo(repo)
    data = os.urandom(300_000)
    api.create_commit(repo, [CommitOperationAdd("a.bin", data)], commit_message="bytes")
    other = f"admin/xet-bytes2-{unique}"
    api.create_repo(other)  # same bytes, another repo: the client re-uses what it knows
    api.create_commit(other, [CommitOperationAdd("b.bin", data)], commit_message="again")
    for r, name in ((repo, "a.bin"), (other, "b.bin")):
        out = hf_hub_download(r, name, endpoint=hub.url, token=hub.admin_token)
        assert Path(out).read_bytes() == data


def test_zoo_push_and_pull_go_through_xet_too(hub, unique, tmp_path, xet):
    """zoo's own client uses whatever huggingface_hub uses: Xet here, git-lfs with the variable."""
    from zoo.cli import main

    folder = tmp_path / "member"
    folder.mkdir()
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.randn(256, 256)}, folder / "model.safetensors")
    weights = (folder / "model.safetensors").read_bytes()
    (folder / "config.json").write_text('{"model_type": "bert"}')
    repo, h = f"admin/xet-zoo-{unique}", ["--hub", hub.url, "--token", hub.admin_token]
    assert main(["push", str(folder), repo, *h]) == 0
    assert _xet_records(hub, hashlib.sha256(weights).hexdigest())
    written = len(xet)
    assert main(["pull", repo, "--to", str(tmp_path / "p"), *h]) == 0
    assert (tmp_path / "p" / "model.safetensors").read_bytes() == weights
    assert len(xet) > written, "zoo pull did not go through Xet"


USER_SCRIPT = textwrap.dedent(
    """
    import os, sys, torch
    torch.manual_seed(0)
    from huggingface_hub import HfApi, constants
    assert not constants.HF_HUB_DISABLE_XET  # the user's default
    from transformers import AutoModel
    from sentence_transformers import SentenceTransformer
    from tests import tiny
    st_dir = tiny.build_st(tiny_dir := os.path.join(sys.argv[1], "st"), "bert")
    st = SentenceTransformer(st_dir, device="cpu")
    st.push_to_hub("admin/xet-st-" + sys.argv[2])
    hf = st[0].auto_model
    hf.push_to_hub("admin/xet-tf-" + sys.argv[2])
    back = SentenceTransformer("admin/xet-st-" + sys.argv[2], device="cpu")
    same = (back.encode(["a zoo"]) == st.encode(["a zoo"])).all()
    tf = AutoModel.from_pretrained("admin/xet-tf-" + sys.argv[2])
    sd, want = tf.state_dict(), hf.state_dict()
    assert same and all(torch.equal(sd[k], want[k]) for k in want), "round trip changed weights"
    print("ok")
    """
)


def test_transformers_and_sentence_transformers_push_to_hub_through_xet(hub, unique, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_XET"}
    env |= {"HF_ENDPOINT": hub.url, "HF_TOKEN": hub.admin_token, "PYTHONPATH": str(REPO_ROOT)}
    env |= {"HF_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", USER_SCRIPT, str(tmp_path), unique],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]
    files = hub.api().list_repo_files(f"admin/xet-tf-{unique}")
    assert "model.safetensors" in files
    sha = hub.api().model_info(f"admin/xet-tf-{unique}", files_metadata=True)
    lfs = [s.lfs.sha256 for s in sha.siblings if s.lfs]
    assert lfs and all(_xet_records(hub, s) for s in lfs)


def test_hf_upload_and_download_cli_through_xet(hub, unique, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_XET"}
    env |= {"HF_ENDPOINT": hub.url, "HF_TOKEN": hub.admin_token, "HF_HOME": str(tmp_path / "h")}
    hf = str(Path(sys.executable).with_name("hf"))
    data = os.urandom(11 << 20)
    (tmp_path / "w.bin").write_bytes(data)
    repo = f"admin/xet-cli-{unique}"
    for args in (
        ["repos", "create", repo],
        ["upload", repo, str(tmp_path / "w.bin"), "w.bin"],
        ["download", repo, "w.bin", "--local-dir", str(tmp_path / "dl")],
    ):
        proc = subprocess.run([hf, *args], env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, (args, proc.stdout[-2000:], proc.stderr[-2000:])
    assert (tmp_path / "dl" / "w.bin").read_bytes() == data
    assert _xet_records(hub, hashlib.sha256(data).hexdigest())


# -- the CAS routes, byte by byte -------------------------------------------------------------


def _auth(hub, token=None) -> dict:
    return {"authorization": f"Bearer {token or hub.admin_token}"}


def _token(hub, repo: str, kind: str = "write", user_token: str | None = None) -> tuple[str, str]:
    r = httpx2.get(
        f"{hub.url}/api/models/{repo}/xet-{kind}-token/main", headers=_auth(hub, user_token)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert r.headers["x-xet-access-token"] == body["accessToken"]
    assert int(r.headers["x-xet-token-expiration"]) == body["exp"]
    return body["casUrl"], body["accessToken"]


def _cas(method: str, url: str, token: str | None, body: bytes = b"", **kw) -> httpx2.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx2.request(method, url, headers={**headers, **kw}, content=body or None)


@pytest.fixture
def secret(hub, unique):
    """alice's private repo holding a file uploaded through Xet, with its xorb and file hash."""
    alice = hub.add_token(f"alice{unique}")
    repo = f"alice{unique}/secret"
    hub.api(alice).create_repo(repo, private=True)
    cas, token = _token(hub, repo, user_token=alice)
    x = B.xorb([os.urandom(5000), os.urandom(7000)])
    assert _cas("POST", f"{cas}/v1/xorbs/default/{x.hash}", token, x.data).json()["was_inserted"]
    terms = [B.Term(x, 0, 2)]
    assert _cas("POST", f"{cas}/v1/shards", token, B.shard([{"terms": terms}], [x])).is_success
    name, content = B.file_of(terms)
    return {"repo": repo, "alice": alice, "xorb": x, "file": name, "content": content, "cas": cas}


@pytest.fixture
def mallory(hub, unique):
    token = hub.add_token(f"mallory{unique}")
    repo = f"mallory{unique}/mine"
    hub.api(token).create_repo(repo)
    cas, xet_token = _token(hub, repo, user_token=token)
    return {"repo": repo, "token": token, "cas": cas, "xet": xet_token}


def test_a_token_for_one_repo_reads_nothing_of_another_private_repo(hub, secret, mallory):
    cas, token = mallory["cas"], mallory["xet"]
    r = _cas("GET", f"{cas}/v1/reconstructions/{secret['file']}", token)
    assert r.status_code == 404
    chunk = X.hash_hex(secret["xorb"].hashes[0])
    assert _cas("GET", f"{cas}/v1/chunks/default-merkledb/{chunk}", token).status_code == 404
    for kind in ("read", "write"):
        r = httpx2.get(
            f"{hub.url}/api/models/{secret['repo']}/xet-{kind}-token/main",
            headers=_auth(hub, mallory["token"]),
        )
        assert r.status_code == 404 and r.headers["x-error-code"] == "RepoNotFound"


def test_knowing_a_xorb_hash_grants_nothing(hub, secret, mallory):
    cas, token, x = mallory["cas"], mallory["xet"], secret["xorb"]
    unverified = B.shard([{"terms": [B.Term(x, 0, 2, verified=False)]}])
    r = _cas("POST", f"{cas}/v1/shards", token, unverified)
    assert r.status_code == 400 and "not available to this repository" in r.json()["error"]
    sha = hashlib.sha256(secret["content"]).hexdigest()
    steal = [_lfs_op("stolen.bin", sha, len(secret["content"]))]
    with pytest.raises(HfHubHTTPError, match="422"):
        hub.api(mallory["token"]).create_commit(mallory["repo"], steal, commit_message="steal")


def _lfs_op(path: str, sha: str, size: int) -> CommitOperationAdd:
    op = CommitOperationAdd(path, b"x")
    op.upload_info.sha256, op.upload_info.size = bytes.fromhex(sha), size
    op._upload_mode, op._is_uploaded = "lfs", True
    return op


def test_proving_the_chunks_links_the_xorb_as_on_the_hub(hub, secret, mallory):
    """A shard whose verification hashes prove knowledge of every chunk may use a stored xorb
    (what the client does after uploading the same bytes elsewhere): only what it proved."""
    cas, token, x = mallory["cas"], mallory["xet"], secret["xorb"]
    terms = [B.Term(x, 0, 1)]
    assert _cas("POST", f"{cas}/v1/shards", token, B.shard([{"terms": terms}])).is_success
    name, content = B.file_of(terms)
    fetched = _reconstruct(cas, token, name)
    assert fetched == content


def test_a_wrong_sha256_or_file_hash_is_refused(hub, mallory):
    cas, token = mallory["cas"], mallory["xet"]
    x = B.xorb([os.urandom(4000)])
    assert _cas("POST", f"{cas}/v1/xorbs/default/{x.hash}", token, x.data).is_success
    lying = B.shard([{"terms": [B.Term(x, 0, 1)], "sha256": "ab" * 32}])
    r = _cas("POST", f"{cas}/v1/shards", token, lying)
    assert r.status_code == 400 and "hashes to" in r.json()["error"]
    wrong = B.shard([{"terms": [B.Term(x, 0, 1)], "hash": "cd" * 32}])
    assert _cas("POST", f"{cas}/v1/shards", token, wrong).status_code == 400


def test_a_claimed_sha256_of_a_stored_object_must_be_the_content(hub, secret, mallory):
    """The object exists already (alice's), but mallory's bytes are other bytes of the same
    size: refused, not linked."""
    cas, token = mallory["cas"], mallory["xet"]
    x = B.xorb([os.urandom(len(secret["content"]))])
    assert _cas("POST", f"{cas}/v1/xorbs/default/{x.hash}", token, x.data).is_success
    sha = hashlib.sha256(secret["content"]).hexdigest()
    lying = B.shard([{"terms": [B.Term(x, 0, 1)], "sha256": sha}])
    r = _cas("POST", f"{cas}/v1/shards", token, lying)
    assert r.status_code == 400 and "does not hash" in r.json()["error"]


def test_bad_xorbs_and_bad_tokens_are_refused(hub, secret, mallory):
    cas, token = mallory["cas"], mallory["xet"]
    x = B.xorb([os.urandom(3000), os.urandom(3000)])
    tampered = x.data[:-1] + bytes([x.data[-1] ^ 1])
    r = _cas("POST", f"{cas}/v1/xorbs/default/{x.hash}", token, tampered)
    assert r.status_code == 400 and r.headers["x-error-code"] == "InvalidXorb"
    assert _cas("POST", f"{cas}/v1/xorbs/default/{x.hash}", None, x.data).status_code == 401
    forged = token[: -len("0000")] + "0000"
    assert _cas("POST", f"{cas}/v1/xorbs/default/{x.hash}", forged, x.data).status_code == 401
    _, read = _token(hub, mallory["repo"], "read", mallory["token"])
    assert _cas("POST", f"{cas}/v1/xorbs/default/{x.hash}", read, x.data).status_code == 403
    assert _cas("POST", f"{cas}/v1/shards", token, b"not a shard").status_code == 400
    parts = token.split(".")
    for exp in ("\u00b2", "9" * 30):  # '²'.isdigit() is True, int('²') raises: was a 500
        odd = ".".join([*parts[:5], exp, parts[6]]).encode("latin-1")
        r = httpx2.post(f"{cas}/v1/shards", headers={"authorization": b"Bearer " + odd})
        assert r.status_code == 401


def test_xorb_urls_are_signed(hub, secret):
    cas, token = _token(hub, secret["repo"], "read", secret["alice"])
    r = _cas("GET", f"{cas}/v1/reconstructions/{secret['file']}", token)
    url = next(iter(r.json()["fetch_info"].values()))[0]["url"]
    assert httpx2.get(url).is_success
    assert httpx2.get(url.replace("sig=", "sig=0")).status_code == 403
    assert httpx2.get(url.replace("exp=", "exp=1")).status_code == 403


def test_reconstruction_of_a_byte_range(hub, mallory):
    """Several xorbs and a Range header: the terms cover exactly what was asked."""
    cas, token = mallory["cas"], mallory["xet"]
    xs = [B.xorb([os.urandom(1000 + 10 * i + j) for j in range(4)]) for i in range(3)]
    for x in xs:
        assert _cas("POST", f"{cas}/v1/xorbs/default/{x.hash}", token, x.data).is_success
    terms = [B.Term(xs[0], 1, 4), B.Term(xs[1], 0, 4), B.Term(xs[2], 0, 2)]
    assert _cas("POST", f"{cas}/v1/shards", token, B.shard([{"terms": terms}], xs)).is_success
    name, content = B.file_of(terms)
    for start, end in [(0, len(content) - 1), (1500, 5200), (4000, 4000), (len(content) - 3, None)]:
        stop = len(content) - 1 if end is None else end
        assert _reconstruct(cas, token, name, start, stop) == content[start : stop + 1]
    r = _cas("GET", f"{cas}/v1/reconstructions/{name}", token, Range=f"bytes={len(content)}-")
    assert r.status_code == 416


def _reconstruct(cas: str, token: str, name: str, start=None, end=None) -> bytes:
    """Rebuild a file (or bytes start..end) from the reconstruction, as hf_xet does."""
    rng = {} if start is None else {"Range": f"bytes={start}-{end}"}
    plan = _cas("GET", f"{cas}/v1/reconstructions/{name}", token, **rng).json()
    out = b""
    for term in plan["terms"]:
        fetch = next(f for f in plan["fetch_info"][term["hash"]] if f["range"] == term["range"])
        span = fetch["url_range"]
        raw = httpx2.get(fetch["url"], headers={"Range": f"bytes={span['start']}-{span['end']}"})
        chunks = X.iter_chunks(raw.content, len(raw.content))
        data = b"".join(X.decompress(s, p, n) for _, s, p, n in chunks)
        assert len(data) == term["unpacked_length"]
        out += data
    out = out[plan["offset_into_first_range"] :]
    return out if start is None else out[: end - start + 1]


def test_a_pull_request_over_xet_from_a_contributor(hub, unique, xet):
    """carol may read alice's repo: she opens a PR and pushes to it through Xet; alice merges."""
    alice, carol = hub.add_token(f"alice{unique}"), hub.add_token(f"carol{unique}")
    repo = f"alice{unique}/open"
    hub.api(alice).create_repo(repo)
    first, second = os.urandom(400_000), os.urandom(300_000)
    pr = hub.api(carol).create_commit(
        repo, [CommitOperationAdd("a.bin", first)], commit_message="add a", create_pr=True
    )
    assert pr.pr_num and _xet_records(hub, hashlib.sha256(first).hexdigest())
    hub.api(carol).create_commit(
        repo, [CommitOperationAdd("b.bin", second)], commit_message="add b", revision=pr.pr_revision
    )
    with pytest.raises(HfHubHTTPError, match="403"):
        hub.api(carol).merge_pull_request(repo, pr.pr_num)
    hub.api(alice).merge_pull_request(repo, pr.pr_num)
    for name, data in (("a.bin", first), ("b.bin", second)):
        out = hf_hub_download(repo, name, endpoint=hub.url, token=alice)
        assert Path(out).read_bytes() == data
    anonymous = httpx2.get(f"{hub.url}/api/models/{repo}/xet-write-token/None?create_pr=1")
    assert anonymous.status_code == 401


def test_a_damaged_xet_map_falls_back_to_plain_http(hub, unique, xet):
    """The sha256 -> Xet hash map is the only thing /resolve reads to offer Xet: if it is
    damaged on disk, the file is still served, over plain HTTP (never a garbled X-Xet-Hash)."""
    api, repo = hub.api(), f"admin/xet-map-{unique}"
    api.create_repo(repo)
    data = os.urandom(200_000)
    api.create_commit(repo, [CommitOperationAdd("w.bin", data)], commit_message="w")
    sha = hashlib.sha256(data).hexdigest()
    (hub.root / "xet" / "sha256" / sha[:2] / sha).write_text("not a hash")
    head = httpx2.head(f"{hub.url}/{repo}/resolve/main/w.bin", headers=_auth(hub))
    assert head.status_code == 200 and "x-xet-hash" not in head.headers
    out = hf_hub_download(repo, "w.bin", endpoint=hub.url, token=hub.admin_token)
    assert Path(out).read_bytes() == data
