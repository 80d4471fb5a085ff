"""The gaps huggingface_hub's own tests found in the embedded Hub (scripts/hf_conformance.py),
each through the official client: the upstream test it reproduces is named in each docstring."""

from __future__ import annotations

import json
import struct
import warnings

import httpx2
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)


@pytest.fixture
def user(hub, unique):
    """(name, token, api) of a fresh user with write access to its namespace."""
    name = f"gap-{unique}"
    token = hub.add_token(name, write=True)
    return name, token, hub.api(token)


def _repo(user, unique, repo_type="model", **kwargs) -> str:
    name, _token, api = user
    return api.create_repo(f"{name}/r-{unique}", repo_type=repo_type, **kwargs).repo_id


def _safetensors(tensors: dict[str, tuple[str, list[int]]]) -> bytes:
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        size = 4 if dtype == "F32" else 2
        for d in shape:
            size *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * offset


def test_namespace_less_ids_are_repo_not_found(hub, tmp_path):
    """TestHfApiRepoFileExists::test_repo_exists: `gpt2`-style ids answer RepoNotFound."""
    api = hub.api()
    assert not api.repo_exists("repo-that-does-not-exist")
    assert not api.file_exists("repo-that-does-not-exist", "config.json")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("gpt2", revision="main")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("gpt2", "config.json", endpoint=hub.url, cache_dir=tmp_path)


def test_update_repo_settings(hub, user, unique):
    """TestHfApiEndpoints::test_update_repo_settings: private and gated round-trip."""
    _name, _token, api = user
    repo_id = _repo(user, unique)
    for gated, private in [("manual", True), (False, False)]:
        api.update_repo_settings(repo_id=repo_id, gated=gated, private=private)
        info = api.model_info(repo_id)
        assert (info.gated, info.private) == (gated, private)
    api.update_repo_settings(repo_id=repo_id, private=True)
    assert not hub.api(hub.add_token(f"other-{unique}")).repo_exists(repo_id)
    with pytest.raises(HfHubHTTPError) as err:
        hub.api(hub.add_token(f"intruder-{unique}")).update_repo_settings(repo_id, private=False)
    assert err.value.response.status_code == 404  # a private repo does not exist to others


def test_short_commit_sha_as_revision(user, unique):
    """TestHfApiTagEndpoint::test_create_tag_on_commit_oid: tags on a 7-hex short sha."""
    _name, _token, api = user
    repo_id = _repo(user, unique, "dataset")
    first = api.upload_file(
        path_or_fileobj=b"one", path_in_repo="a.txt", repo_id=repo_id, repo_type="dataset"
    ).oid
    api.upload_file(
        path_or_fileobj=b"two", path_in_repo="a.txt", repo_id=repo_id, repo_type="dataset"
    )
    api.create_tag(repo_id, tag="v1", revision=first[:7], repo_type="dataset")
    refs = api.list_repo_refs(repo_id, repo_type="dataset")
    assert [t.target_commit for t in refs.tags] == [first]
    assert api.dataset_info(repo_id, revision=first[:10]).sha == first
    with pytest.raises(RevisionNotFoundError):
        api.dataset_info(repo_id, revision="0000000")


def test_move_repo_redirects_from_the_old_name(hub, user, unique, tmp_path):
    """test_move_repo_normal_usage + test_download_regular_file_from_private_renamed_repo."""
    name, token, api = user
    old = _repo(user, unique)
    api.update_repo_settings(old, private=True)
    api.upload_file(path_or_fileobj=b"content", path_in_repo="file.txt", repo_id=old)
    new = f"{name}/moved-{unique}"
    api.move_repo(from_id=old, to_id=new)
    assert api.model_info(old).id == new
    path = hf_hub_download(old, "file.txt", endpoint=hub.url, token=token, cache_dir=tmp_path)
    assert open(path).read() == "content"
    assert not hub.api(hub.add_token(f"peek-{unique}")).repo_exists(old)  # no leak of the name
    other = api.create_repo(f"{name}/taken-{unique}").repo_id
    with pytest.raises(HfHubHTTPError) as err:
        api.move_repo(from_id=new, to_id=other)
    assert err.value.response.status_code == 409
    api.create_repo(old)  # the old name is free again: it no longer redirects
    assert api.model_info(old).id == old


def test_validate_yaml_checks_the_metadata_schema(user, unique):
    """TestCommitApi::test_commit_modelcard_invalid_metadata and ..._empty_metadata."""
    _name, _token, api = user
    repo_id = _repo(user, unique)
    bad = b"---\nmodel-index: foo\n---\n\ncard\n"
    with pytest.raises(ValueError, match="Invalid metadata in README.md"):
        api.upload_file(path_or_fileobj=bad, path_in_repo="README.md", repo_id=repo_id)
    with pytest.warns(UserWarning, match="Warnings while validating metadata in README.md"):
        api.upload_file(path_or_fileobj=b"no metadata", path_in_repo="README.md", repo_id=repo_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        api.upload_file(
            path_or_fileobj=b"---\nlicense: mit\n---\n", path_in_repo="README.md", repo_id=repo_id
        )


def test_delete_folder_named_without_slash(user, unique):
    """TestHfApiDeleteFolder::test_create_commit_implicit_delete_folder_is_ok."""
    _name, _token, api = user
    repo_id = _repo(user, unique)
    ops = [CommitOperationAdd(f"1/{n}.txt", b"x") for n in "ab"]
    api.create_commit(repo_id, ops + [CommitOperationAdd("keep.txt", b"k")], commit_message="up")
    api.create_commit(repo_id, [CommitOperationDelete("1")], commit_message="rm")
    assert sorted(api.list_repo_files(repo_id)) == [".gitattributes", "keep.txt"]


def test_refs_rules_as_on_the_hub(user, unique):
    """test_create_tag_on_missing_revision, test_create_branch_existing_tag_does_not_fail."""
    _name, _token, api = user
    repo_id = _repo(user, unique)
    with pytest.raises(RevisionNotFoundError):
        api.create_tag(repo_id, tag="invalid tag", revision="foobar")
    api.create_tag(repo_id, tag="tag")
    api.create_branch(repo_id, branch="tag")
    assert [b.name for b in api.list_repo_refs(repo_id).branches] == ["main", "tag"]


def test_auth_check(hub, user, unique):
    """TestHfApiAuthCheck::test_auth_check_success (and the refusals)."""
    _name, token, api = user
    repo_id = _repo(user, unique, "dataset", private=True)
    api.auth_check(repo_id, repo_type="dataset")
    api.auth_check(repo_id, repo_type="dataset", write=True)
    stranger = hub.api(hub.add_token(f"stranger-{unique}", write=True))
    with pytest.raises(RepositoryNotFoundError):
        stranger.auth_check(repo_id, repo_type="dataset")
    api.update_repo_settings(repo_id, private=False, repo_type="dataset")
    stranger.auth_check(repo_id, repo_type="dataset")
    with pytest.raises(HfHubHTTPError) as err:
        stranger.auth_check(repo_id, repo_type="dataset", write=True)
    assert err.value.response.status_code == 403


def test_super_squash_history(user, unique):
    """TestSquashHistory::test_super_squash_history_on_branch."""
    _name, _token, api = user
    repo_id = _repo(user, unique)
    for data in (b"a", b"b"):
        api.upload_file(path_or_fileobj=data, path_in_repo="file.txt", repo_id=repo_id)
    api.create_branch(repo_id, branch="v0.1")
    api.super_squash_history(repo_id=repo_id)
    main = api.list_repo_commits(repo_id)
    assert [c.title for c in main] == ["Super-squash branch 'main' using huggingface_hub"]
    assert len(api.list_repo_commits(repo_id, revision="v0.1")) == 3
    path = api.hf_hub_download(repo_id, "file.txt")
    assert open(path, "rb").read() == b"b"


def test_request_id_on_every_response(hub, user, unique):
    """TestCommitApi::test_create_commit_repo_does_not_exist quotes X-Request-Id."""
    _name, _token, api = user
    with pytest.raises(RepositoryNotFoundError) as err:
        api.model_info(f"{user[0]}/missing-{unique}")
    assert err.value.response.headers["X-Request-Id"] in str(err.value)
    ok = httpx2.get(f"{hub.url}/api/models")
    assert ok.status_code == 200 and ok.headers["X-Request-Id"]


def test_expand_model_safetensors_config_and_tags(hub, user, unique):
    """test_list_models_expand_*, model_info's safetensors/config, tags from config.json."""
    _name, _token, api = user
    repo_id = _repo(user, unique)
    weights = _safetensors({"w": ("F32", [4, 8]), "b": ("F16", [8]), "e": ("F32", [3])})
    config = {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": 8}
    ops = [
        CommitOperationAdd("model.safetensors", weights),
        CommitOperationAdd("config.json", json.dumps(config).encode()),
    ]
    api.create_commit(repo_id, ops, commit_message="weights")
    info = api.model_info(repo_id)
    assert info.safetensors.parameters == {"F16": 8, "F32": 35} and info.safetensors.total == 43
    assert info.config == {"architectures": ["BertModel"], "model_type": "bert"}
    assert "bert" in info.tags and "safetensors" in info.tags
    only = api.model_info(repo_id, expand=["author", "safetensors"])
    assert only.author == user[0] and only.safetensors.total == 43
    assert only.sha is None and only.tags is None
    listed = list(api.list_models(author=user[0], expand=["author", "downloadsAllTime"]))
    assert [(m.author, m.downloads_all_time, m.downloads) for m in listed] == [(user[0], 0, None)]
    for call in (
        lambda: api.model_info(repo_id, expand=["foo"]),
        lambda: list(api.list_models(expand=["foo"])),
    ):
        with pytest.raises(HfHubHTTPError) as err:
            call()
        assert err.value.response.status_code == 400


def test_error_wording_and_statuses_as_on_the_hub(user, unique):
    """test_create_commit_conflict (412), test_create_file_with_relative_path (422),
    test_delete_branch_on_protected_branch_fails, test_create_tag_twice (409)."""
    _name, _token, api = user
    repo_id = _repo(user, unique)
    parent = api.model_info(repo_id).sha
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    with pytest.raises(HfHubHTTPError) as err:
        api.create_commit(
            repo_id, [CommitOperationAdd("y", b"y")], commit_message="m", parent_commit=parent
        )
    assert err.value.response.status_code == 412
    assert "The branch was updated since you opened this page. Please refresh" in str(err.value)
    with pytest.raises(HfHubHTTPError) as err:
        api.upload_file(path_or_fileobj=b"c", path_in_repo="..\\ddd", repo_id=repo_id)
    assert err.value.response.status_code == 422
    with pytest.raises(HfHubHTTPError, match="Cannot delete refs/heads/main"):
        api.delete_branch(repo_id, branch="main")
    with pytest.raises(HfHubHTTPError, match="Invalid rev id"):
        api.delete_branch(repo_id, branch="cool-branch")
    api.create_tag(repo_id, tag="t1")
    with pytest.raises(HfHubHTTPError) as err:
        api.create_tag(repo_id, tag="t1")
    assert err.value.response.status_code == 409


def test_conflict_and_not_found_wording(hub, user, unique):
    """test_move_repo_target_already_exists, test_create_branch_existing_branch_fails,
    test_delete_repo_error_message, test_create_commit_repo_does_not_exist (its exact text)."""
    name, _token, api = user
    first, second = _repo(user, unique), api.create_repo(f"{name}/second-{unique}").repo_id
    with pytest.raises(HfHubHTTPError, match=r"A model repository called .* already exists"):
        api.move_repo(from_id=first, to_id=second)
    api.create_branch(first, branch="cool-branch")
    with pytest.raises(HfHubHTTPError, match=r"Reference refs/heads/cool-branch already exists"):
        api.create_branch(first, branch="cool-branch")
    with pytest.raises(
        HfHubHTTPError, match=r"(?s)404 Client Error.+\(Request ID: .+\).*Not Found"
    ):
        api.delete_repo(f"missing-{unique}")
    missing = f"{name}/missing-{unique}"
    with pytest.raises(RepositoryNotFoundError) as err:
        api.create_commit(missing, [CommitOperationAdd("a", b"a")], commit_message="m")
    request_id = err.value.response.headers["X-Request-Id"]
    assert str(err.value).startswith(
        f"404 Client Error. (Request ID: {request_id})\n\nRepository Not Found for url: "
        f"{hub.url}/api/models/{missing}/preupload/main.\nPlease make sure"
    )
    assert "Repository not found" not in str(err.value)  # the server's words add nothing


def test_gated_repo_files_need_access(hub, user, unique, tmp_path):
    """test_auth_check_gated_repo, test_download_from_a_gated_repo_with_hf_hub_download."""
    _name, token, api = user
    repo_id = _repo(user, unique)
    api.update_repo_settings(repo_id, gated="auto")
    other = hub.add_token(f"ungated-{unique}")
    with pytest.raises(GatedRepoError, match="Access to model .* is restricted"):
        hub.api(other).auth_check(repo_id)
    with pytest.raises(GatedRepoError):
        hf_hub_download(
            repo_id, ".gitattributes", endpoint=hub.url, token=other, cache_dir=tmp_path
        )
    assert hub.api(other).model_info(repo_id).gated == "auto"  # the metadata stays public
    assert hf_hub_download(repo_id, ".gitattributes", endpoint=hub.url, token=token)


def test_validate_yaml_licenses_and_leading_blank_lines(hub, user, unique):
    """TestRepoCard::test_validate_repocard (Accept: text/plain) and INVALID_MODELCARD's
    leading newline in test_commit_modelcard_invalid_metadata."""
    _name, _token, api = user
    repo_id = _repo(user, unique)
    with pytest.raises(ValueError, match="Invalid metadata in README.md"):
        api.upload_file(
            path_or_fileobj=b"\n---\nmodel-index: foo\n---\n",
            path_in_repo="README.md",
            repo_id=repo_id,
        )
    with pytest.raises(ValueError, match="license"):
        api.upload_file(
            path_or_fileobj=b"---\nlicense: asdf\n---\n", path_in_repo="README.md", repo_id=repo_id
        )
    r = httpx2.post(
        f"{hub.url}/api/validate-yaml",
        json={"content": "---\nlicense: asdf\n---\n", "repoType": "model"},
        headers={"Accept": "text/plain"},
    )
    assert r.status_code == 400 and r.text.startswith('- Error: "license" must be one of [')
    assert r.headers["X-Error-Code"] == "InvalidYaml"


def test_list_and_permanently_delete_lfs_files(hub, user, unique):
    """TestListAndPermanentlyDeleteLFSFiles::test_list_and_delete_lfs_files."""
    _name, _token, api = user
    repo_id = _repo(user, unique)
    for path, data in [("a.bin", b"LFS a"), ("t.txt", b"text"), ("b.bin", b"LFS b")]:
        api.upload_file(path_or_fileobj=data, path_in_repo=path, repo_id=repo_id)
    old_head = api.model_info(repo_id).sha
    api.create_branch(repo_id, branch="br")
    api.upload_file(path_or_fileobj=b"LFS br", path_in_repo="c.bin", repo_id=repo_id, revision="br")
    files = list(api.list_lfs_files(repo_id))
    assert sorted((f.filename, f.ref, f.size) for f in files) == [
        ("a.bin", "main", 5),
        ("b.bin", "main", 5),
        ("c.bin", "br", 6),
    ]
    with pytest.raises(HfHubHTTPError) as err:
        list(hub.api(hub.add_token(f"nosy-{unique}")).list_lfs_files(repo_id))
    assert err.value.response.status_code == 403
    api.permanently_delete_lfs_files(repo_id, [f for f in files if f.ref == "main"])
    assert [f.filename for f in api.list_lfs_files(repo_id)] == ["c.bin"]
    assert sorted(api.list_repo_files(repo_id)) == [".gitattributes", "t.txt"]
    assert sorted(api.list_repo_files(repo_id, revision="br")) == [
        ".gitattributes",
        "c.bin",
        "t.txt",
    ]
    with pytest.raises(EntryNotFoundError):  # not even from the commit that held it
        api.hf_hub_download(repo_id, "a.bin", revision=old_head)


def test_super_squash_a_pull_request(user, unique):
    """TestSquashHistory::test_super_squash_history_on_special_ref: squash refs/pr/N."""
    _name, _token, api = user
    repo_id = _repo(user, unique)
    pr = api.create_pull_request(repo_id=repo_id, title="squash me")
    for data in (b"a", b"b"):
        api.upload_file(
            path_or_fileobj=data, path_in_repo="f.txt", repo_id=repo_id, revision=pr.git_reference
        )
    api.super_squash_history(repo_id=repo_id, branch=pr.git_reference)
    assert len(api.list_repo_commits(repo_id, revision=pr.git_reference)) == 1
    assert api.hf_hub_download(repo_id, "f.txt", revision=pr.git_reference)
    assert len(api.list_repo_commits(repo_id)) == 1  # main untouched: its one initial commit
