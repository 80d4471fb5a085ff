"""The official huggingface_hub client against the embedded Hub: every call zoo relies on."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import (
    CommitOperationCopy,
    HfApi,
    RepoFile,
    RepoFolder,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from zoo.hub.server import HubStore, serve_in_thread

BIG = 10 * 1024 * 1024 + 4321  # over the 10 MiB threshold: must travel through LFS
README = """---
license: apache-2.0
library_name: sentence-transformers
pipeline_tag: sentence-similarity
tags:
- zoo-test
- {tag}
datasets:
- org/corpus
base_model: org/base
---
# Test model
"""


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture(scope="module")
def uploaded(hub, tmp_path_factory):
    """One repo with config.json, README.md, a nested file and a >10 MB file, uploaded once."""
    tag = "t" + os.urandom(5).hex()
    repo_id = f"conf-{tag}/model"
    folder = tmp_path_factory.mktemp("folder")
    (folder / "config.json").write_text(json.dumps({"hidden_size": 8}))
    (folder / "README.md").write_text(README.format(tag=tag))
    (folder / "sub").mkdir()
    (folder / "sub" / "nested.txt").write_text("nested\n")
    (folder / "big.dat").write_bytes(os.urandom(BIG))
    api = hub.api()
    api.create_repo(repo_id)
    info = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message="first upload")
    return {"repo_id": repo_id, "folder": folder, "tag": tag, "commit": info.oid}


def test_create_repo_conflict_and_exist_ok(hub, unique):
    api = hub.api()
    url = api.create_repo(f"c-{unique}/r")
    assert url == f"{hub.url}/c-{unique}/r"
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(f"c-{unique}/r")
    assert err.value.response.status_code == 409
    # this phrase would make the client retry forever
    assert "another conflicting operation is in progress" not in err.value.response.text
    assert api.create_repo(f"c-{unique}/r", exist_ok=True).repo_id == f"c-{unique}/r"
    # a new repo starts with the Hub's .gitattributes commit
    assert api.list_repo_files(f"c-{unique}/r") == [".gitattributes"]


def test_repo_exists(hub, uploaded, unique):
    api = hub.api()
    assert api.repo_exists(uploaded["repo_id"])
    assert not api.repo_exists(f"nobody-{unique}/nothing")
    assert not api.repo_exists(uploaded["repo_id"], repo_type="dataset")


def test_upload_same_folder_again_is_a_noop(hub, uploaded):
    api = hub.api()
    before = api.list_repo_commits(uploaded["repo_id"])
    again = api.upload_folder(repo_id=uploaded["repo_id"], folder_path=uploaded["folder"])
    after = api.list_repo_commits(uploaded["repo_id"])
    assert again.oid == uploaded["commit"] == after[0].commit_id
    assert [c.commit_id for c in after] == [c.commit_id for c in before]
    assert [c.title for c in after] == ["first upload", "initial commit"]


def test_model_info_with_files_metadata(hub, uploaded):
    info = hub.api().model_info(uploaded["repo_id"], files_metadata=True)
    folder = uploaded["folder"]
    assert info.id == uploaded["repo_id"] and info.sha == uploaded["commit"]
    assert info.private is False and info.last_modified and info.created_at
    files = {s.rfilename: s for s in info.siblings}
    assert set(files) == {".gitattributes", "README.md", "config.json", "sub/nested.txt", "big.dat"}
    config = (folder / "config.json").read_bytes()
    assert files["config.json"].size == len(config) and files["config.json"].lfs is None
    assert files["config.json"].blob_id == git_sha1(config)
    big = (folder / "big.dat").read_bytes()
    assert files["big.dat"].size == BIG
    assert files["big.dat"].lfs.sha256 == hashlib.sha256(big).hexdigest()
    assert files["big.dat"].lfs.size == BIG and files["big.dat"].lfs.pointer_size > 100
    assert info.card_data.license == "apache-2.0"
    assert info.card_data.to_dict()["tags"] == ["zoo-test", uploaded["tag"]]
    assert info.library_name == "sentence-transformers"
    assert info.pipeline_tag == "sentence-similarity"
    for tag in (
        "zoo-test",
        uploaded["tag"],
        "license:apache-2.0",
        "dataset:org/corpus",
        "base_model:org/base",
    ):
        assert tag in info.tags
    # the /revision/{sha} form answers for the same commit
    assert hub.api().model_info(uploaded["repo_id"], revision=info.sha).sha == info.sha


def test_list_models_filters(hub, uploaded, unique):
    api, tag, repo_id = hub.api(), uploaded["tag"], uploaded["repo_id"]
    other = f"conf-{tag}/other"
    api.create_repo(other, exist_ok=True)
    api.upload_file(
        path_or_fileobj=b"---\ntags: [zoo-test]\n---\n", path_in_repo="README.md", repo_id=other
    )
    assert [m.id for m in api.list_models(filter=tag)] == [repo_id]
    assert [m.id for m in api.list_models(filter=["zoo-test", tag])] == [repo_id]  # AND
    assert [
        m.id for m in api.list_models(filter=["zoo-test", "license:mit"], author=f"conf-{tag}")
    ] == []
    assert sorted(m.id for m in api.list_models(author=f"conf-{tag}")) == [repo_id, other]
    assert [m.id for m in api.list_models(search=f"{tag}/mod")] == [repo_id]
    full = list(api.list_models(filter=tag, full=True, cardData=True))
    assert full[0].sha == uploaded["commit"]
    assert {s.rfilename for s in full[0].siblings} >= {"big.dat", "README.md"}
    assert full[0].card_data.license == "apache-2.0"
    bare = list(api.list_models(filter=tag))
    assert bare[0].siblings is None and bare[0].card_data is None


def test_list_models_pages_with_link_header(tmp_path):
    root = tmp_path / "hub"
    with serve_in_thread(root, list_page_size=2) as url:
        api = HfApi(endpoint=url, token=HubStore(root).admin_token())
        for i in range(5):
            api.create_repo(f"pager/r{i}")
            api.upload_file(
                path_or_fileobj=b"---\ntags: [paged]\n---\n",
                path_in_repo="README.md",
                repo_id=f"pager/r{i}",
            )
        api.create_repo("pager/untagged")
        found = [m.id for m in api.list_models(filter="paged", author="pager", full=True)]
        assert found == [f"pager/r{i}" for i in range(5)]
        assert [m.id for m in api.list_models(filter="paged", limit=3)] == [
            "pager/r0",
            "pager/r1",
            "pager/r2",
        ]
        first = httpx2.get(
            f"{url}/api/models", params=[("filter", "paged"), ("author", "pager"), ("full", "true")]
        )
        next_url = first.links["next"]["url"]
        for param in ("filter=paged", "author=pager", "full=true", "cursor=2"):
            assert param in next_url
        second = httpx2.get(next_url)
        assert [m["id"] for m in second.json()] == ["pager/r2", "pager/r3"]
        assert "siblings" in second.json()[0]


def test_tree_paths_info_and_file_exists(hub, uploaded):
    api, repo_id = hub.api(), uploaded["repo_id"]
    assert sorted(api.list_repo_files(repo_id)) == sorted(
        [".gitattributes", "README.md", "big.dat", "config.json", "sub/nested.txt"]
    )
    top = {e.path: e for e in api.list_repo_tree(repo_id)}
    assert isinstance(top["sub"], RepoFolder) and isinstance(top["big.dat"], RepoFile)
    assert "sub/nested.txt" not in top
    assert (
        top["big.dat"].lfs.sha256
        == hashlib.sha256((uploaded["folder"] / "big.dat").read_bytes()).hexdigest()
    )
    assert top["big.dat"].xet_hash is None
    assert [e.path for e in api.list_repo_tree(repo_id, path_in_repo="sub")] == ["sub/nested.txt"]
    recursive = {e.path for e in api.list_repo_tree(repo_id, recursive=True)}
    assert {"sub", "sub/nested.txt", "big.dat"} <= recursive
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree(repo_id, path_in_repo="nope"))
    infos = {e.path: e for e in api.get_paths_info(repo_id, ["config.json", "sub", "missing.txt"])}
    assert set(infos) == {"config.json", "sub"}
    assert infos["config.json"].blob_id == git_sha1(
        (uploaded["folder"] / "config.json").read_bytes()
    )
    assert api.file_exists(repo_id, "sub/nested.txt") and not api.file_exists(
        repo_id, "sub/none.txt"
    )


def test_tree_pages_with_expand(hub, uploaded):
    entries = list(hub.api().list_repo_tree(uploaded["repo_id"], recursive=True, expand=True))
    assert all(
        e.last_commit.oid == uploaded["commit"] for e in entries if e.path != ".gitattributes"
    )


def test_hf_hub_download_cold_warm_missing(hub, uploaded):
    repo_id = uploaded["repo_id"]
    path = hf_hub_download(repo_id, "big.dat", endpoint=hub.url)
    assert Path(path).read_bytes() == (uploaded["folder"] / "big.dat").read_bytes()
    assert f"snapshots/{uploaded['commit']}/big.dat" in path
    blob = Path(path).resolve()
    assert blob.name == hashlib.sha256(blob.read_bytes()).hexdigest()  # LFS ETag = sha256
    mtime = blob.stat().st_mtime_ns
    assert hf_hub_download(repo_id, "big.dat", endpoint=hub.url) == path  # warm: HEAD only
    assert blob.stat().st_mtime_ns == mtime
    cfg = Path(hf_hub_download(repo_id, "config.json", endpoint=hub.url)).resolve()
    assert cfg.name == git_sha1(cfg.read_bytes())  # regular ETag = git blob sha1
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "missing.json", endpoint=hub.url)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(repo_id + "-nope", "config.json", endpoint=hub.url)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_id, "config.json", revision="no-branch", endpoint=hub.url)


def test_snapshot_download(hub, uploaded, tmp_path):
    local = Path(snapshot_download(uploaded["repo_id"], endpoint=hub.url, cache_dir=tmp_path))
    for rel in ("config.json", "README.md", "big.dat", "sub/nested.txt"):
        assert (local / rel).read_bytes() == (uploaded["folder"] / rel).read_bytes()
    assert local.name == uploaded["commit"]


def test_tags_branches_and_pinned_downloads(hub, unique):
    api, repo_id = hub.api(), f"refs-{unique}/r"
    api.create_repo(repo_id)
    v1 = api.upload_file(
        path_or_fileobj=b"one", path_in_repo="f.txt", repo_id=repo_id, commit_message="v1"
    ).oid
    api.create_tag(repo_id, tag="v1.0", revision=v1)
    v2 = api.upload_file(
        path_or_fileobj=b"two", path_in_repo="f.txt", repo_id=repo_id, commit_message="v2"
    ).oid

    def read(revision):
        return Path(
            hf_hub_download(repo_id, "f.txt", revision=revision, endpoint=hub.url)
        ).read_bytes()

    assert (read("v1.0"), read(v1), read("main")) == (b"one", b"one", b"two")
    api.create_branch(repo_id, branch="dev", revision=v1)
    api.create_branch(repo_id, branch="dev", exist_ok=True)
    with pytest.raises(HfHubHTTPError):
        api.create_branch(repo_id, branch="dev")
    dev = api.upload_file(
        path_or_fileobj=b"dev", path_in_repo="d.txt", repo_id=repo_id, revision="dev"
    ).oid
    assert read("dev") == b"one"
    refs = api.list_repo_refs(repo_id)
    assert {b.name: b.target_commit for b in refs.branches} == {"main": v2, "dev": dev}
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1.0", v1)]
    assert [c.title for c in api.list_repo_commits(repo_id)] == ["v2", "v1", "initial commit"]
    dev_history = api.list_repo_commits(repo_id, revision="dev", formatted=True)
    assert [c.commit_id for c in dev_history][:2] == [dev, v1]
    assert dev_history[1].formatted_title == "v1"
    api.delete_tag(repo_id, tag="v1.0")
    api.delete_branch(repo_id, branch="dev")
    assert api.list_repo_refs(repo_id).tags == []


def test_list_repo_commits_pages(tmp_path):
    root = tmp_path / "hub"
    with serve_in_thread(root, commits_page_size=2) as url:
        api = HfApi(endpoint=url, token=HubStore(root).admin_token())
        api.create_repo("pages/c")
        for i in range(4):
            api.upload_file(
                path_or_fileobj=str(i).encode(),
                path_in_repo="n.txt",
                repo_id="pages/c",
                commit_message=f"c{i}",
            )
        titles = [c.title for c in api.list_repo_commits("pages/c")]
        assert titles == ["c3", "c2", "c1", "c0", "initial commit"]


def test_delete_file_and_folder(hub, unique, tmp_path):
    api, repo_id = hub.api(), f"del-{unique}/r"
    api.create_repo(repo_id)
    for rel in ("a.txt", "dir/b.txt", "dir/sub/c.txt", "keep/d.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    api.upload_folder(repo_id=repo_id, folder_path=tmp_path)
    api.delete_file("a.txt", repo_id)
    api.delete_folder("dir", repo_id)
    assert sorted(api.list_repo_files(repo_id)) == [".gitattributes", "keep/d.txt"]
    with pytest.raises(EntryNotFoundError):
        api.delete_file("a.txt", repo_id)


def test_delete_repo_and_missing_ok(hub, unique):
    api, repo_id = hub.api(), f"gone-{unique}/r"
    api.create_repo(repo_id)
    api.delete_repo(repo_id)
    assert not api.repo_exists(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        api.delete_repo(repo_id)
    api.delete_repo(repo_id, missing_ok=True)
    api.create_repo(repo_id)  # the name can be reused, fresh
    assert api.list_repo_files(repo_id) == [".gitattributes"]


def test_dataset_repo(hub, unique, tmp_path):
    api, repo_id = hub.api(), f"data-{unique}/corpus"
    api.create_repo(repo_id, repo_type="dataset")
    (tmp_path / "train.jsonl").write_text('{"text": "hello"}\n')
    (tmp_path / "README.md").write_text(
        "---\nlicense: mit\nlanguage: [en]\ntags: [zoo-data]\n---\n"
    )
    (tmp_path / "shard.parquet").write_bytes(os.urandom(2048))
    api.upload_folder(repo_id=repo_id, folder_path=tmp_path, repo_type="dataset")
    path = hf_hub_download(repo_id, "train.jsonl", repo_type="dataset", endpoint=hub.url)
    assert Path(path).read_text() == '{"text": "hello"}\n'
    shard = hf_hub_download(repo_id, "shard.parquet", repo_type="dataset", endpoint=hub.url)
    assert Path(shard).read_bytes() == (tmp_path / "shard.parquet").read_bytes()
    info = api.dataset_info(repo_id, files_metadata=True)
    lfs = {s.rfilename: s.lfs for s in info.siblings}
    assert lfs["shard.parquet"] is not None and lfs["train.jsonl"] is None  # binary suffix -> LFS
    assert {"zoo-data", "license:mit", "language:en"} <= set(info.tags)
    assert [d.id for d in api.list_datasets(author=f"data-{unique}")] == [repo_id]
    assert not api.repo_exists(repo_id)  # as a model, it does not exist
    local = snapshot_download(
        repo_id, repo_type="dataset", endpoint=hub.url, cache_dir=tmp_path / "c"
    )
    assert (Path(local) / "README.md").exists()


def test_whoami(hub):
    assert hub.api().whoami()["name"] == "admin"
    token = hub.add_token("whoami-user", write=False)
    me = hub.api(token).whoami()
    assert me["name"] == "whoami-user" and me["auth"]["accessToken"]["role"] == "read"


def test_gitignore_and_copies(hub, unique, tmp_path):
    api, repo_id = hub.api(), f"ign-{unique}/r"
    api.create_repo(repo_id)
    (tmp_path / ".gitignore").write_text("*.log\ncache/\n")
    (tmp_path / "run.log").write_text("noise")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "x.txt").write_text("x")
    (tmp_path / "w.bin").write_bytes(os.urandom(1000))
    (tmp_path / "a.txt").write_text("a")
    api.upload_folder(repo_id=repo_id, folder_path=tmp_path)
    assert sorted(api.list_repo_files(repo_id)) == [
        ".gitattributes",
        ".gitignore",
        "a.txt",
        "w.bin",
    ]
    api.create_commit(
        repo_id,
        [CommitOperationCopy("w.bin", "copy/w.bin"), CommitOperationCopy("a.txt", "copy/a.txt")],
        commit_message="copies",
    )
    files = {s.rfilename: s for s in api.model_info(repo_id, files_metadata=True).siblings}
    assert files["copy/w.bin"].lfs.sha256 == files["w.bin"].lfs.sha256
    assert files["copy/a.txt"].blob_id == files["a.txt"].blob_id
