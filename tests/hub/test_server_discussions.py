"""Pull requests and discussions through the official client: create_pr, refs/pr/N, the
discussions API, merging, permissions, private repos, a restart, and `hf discussions`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

HF_CLI = Path(sys.executable).parent / "hf"


@pytest.fixture(scope="module")
def people(hub):
    """alice owns the repos; carol may only read them; `readonly` is carol's read-only token."""
    suffix = os.urandom(4).hex()
    alice, carol = f"alice-{suffix}", f"carol-{suffix}"
    return {
        "alice": (alice, hub.add_token(alice)),
        "carol": (carol, hub.add_token(carol)),
        "readonly": (carol, hub.add_token(carol, write=False)),
    }


def _repo(hub, people, unique, private=False) -> tuple[str, HfApi]:
    alice, token = people["alice"]
    api = hub.api(token)
    repo_id = api.create_repo(f"{alice}/m-{unique}", private=private).repo_id
    ops = [CommitOperationAdd("a.txt", b"a1\n"), CommitOperationAdd("b.txt", b"b1\n")]
    api.create_commit(repo_id, ops, commit_message="start")
    return repo_id, api


def _status(err) -> int:
    return err.value.response.status_code


def test_pull_request_opened_listed_commented_merged(hub, people, unique):
    repo_id, owner = _repo(hub, people, unique)
    carol = hub.api(people["carol"][1])
    ops = [CommitOperationAdd("new.txt", b"new\n"), CommitOperationAdd("w.bin", b"\0" * 64)]
    info = carol.create_commit(
        repo_id, ops, commit_message="Add new", commit_description="why", create_pr=True
    )
    assert (info.pr_num, info.pr_revision) == (1, "refs/pr/1")
    assert info.pr_url == f"{hub.url}/{repo_id}/discussions/1"
    assert "new.txt" not in owner.list_repo_files(repo_id)  # main untouched
    carol.upload_file(
        path_or_fileobj=b"more\n", path_in_repo="d/more.txt", repo_id=repo_id, revision="refs/pr/1"
    )
    pr_files = {f.path for f in owner.list_repo_tree(repo_id, revision="refs/pr/1", recursive=True)}
    assert {"new.txt", "w.bin", "d/more.txt", "a.txt"} <= pr_files
    path = hf_hub_download(repo_id, "d/more.txt", revision="refs/pr/1", endpoint=hub.url)
    assert Path(path).read_bytes() == b"more\n"
    [entry] = owner.get_paths_info(repo_id, ["new.txt"], revision="refs/pr/1")
    assert entry.size == 4
    refs = owner.list_repo_refs(repo_id, include_pull_requests=True)
    head = owner.model_info(repo_id, revision="refs/pr/1").sha
    assert [(r.ref, r.target_commit) for r in refs.pull_requests] == [("refs/pr/1", head)]
    titles = [c.title for c in owner.list_repo_commits(repo_id, revision="refs/pr/1")]
    assert titles[:3] == ["Upload d/more.txt with huggingface_hub", "Add new", "start"]

    [listed] = owner.get_repo_discussions(repo_id, discussion_type="pull_request")
    assert (listed.num, listed.title, listed.status, listed.author) == (
        1,
        "Add new",
        "open",
        people["carol"][0],
    )
    assert list(owner.get_repo_discussions(repo_id, discussion_type="discussion")) == []
    assert list(owner.get_repo_discussions(repo_id, author="nobody")) == []
    comment = owner.comment_discussion(repo_id, 1, "Looks good, one nit")
    edited = owner.edit_discussion_comment(repo_id, 1, comment.id, "Looks good")
    renamed = carol.rename_discussion(repo_id, 1, "Add new.txt and w.bin")
    details = owner.get_discussion_details(repo_id, 1)
    assert [e.type for e in details.events] == [
        "comment",
        "commit",
        "commit",
        "comment",
        "title-change",
    ]
    assert details.events[0].content == "why"
    assert details.events[3] == edited and edited.content == "Looks good" and edited.edited
    assert (renamed.old_title, renamed.new_title) == ("Add new", "Add new.txt and w.bin")
    assert details.target_branch == "refs/heads/main" and details.conflicting_files == []
    assert "+++ b/new.txt\n@@ -0,0 +1 @@\n+new\n" in details.diff
    assert "oid sha256:" in details.diff  # LFS files diff as their pointers, as in git

    with pytest.raises(HfHubHTTPError) as err:  # reading is not writing: carol cannot merge
        carol.merge_pull_request(repo_id, 1)
    assert _status(err) == 403
    owner.merge_pull_request(repo_id, 1, comment="Thanks!")
    merged = owner.get_discussion_details(repo_id, 1)
    assert merged.status == "merged"
    assert merged.merge_commit_oid == owner.model_info(repo_id).sha == head  # fast-forward
    assert {"new.txt", "w.bin", "d/more.txt"} <= set(owner.list_repo_files(repo_id))
    assert [e.type for e in merged.events][-2:] == ["comment", "status-change"]
    assert [d.num for d in owner.get_repo_discussions(repo_id, discussion_status="closed")] == [1]
    with pytest.raises(HfHubHTTPError) as err:  # a merged PR takes no more commits
        carol.upload_file(
            path_or_fileobj=b"x", path_in_repo="x", repo_id=repo_id, revision="refs/pr/1"
        )
    assert _status(err) == 403


def test_merge_onto_a_moved_main_and_a_conflict_refused(hub, people, unique):
    repo_id, owner = _repo(hub, people, unique)
    carol = hub.api(people["carol"][1])
    carol.create_commit(
        repo_id,
        [CommitOperationAdd("a.txt", b"a2\n"), CommitOperationDelete("b.txt")],
        commit_message="edit a, drop b",
        create_pr=True,
    )
    clash = carol.create_commit(
        repo_id, [CommitOperationAdd("c.txt", b"pr\n")], commit_message="c", create_pr=True
    )
    owner.upload_file(path_or_fileobj=b"main\n", path_in_repo="c.txt", repo_id=repo_id)
    before = owner.model_info(repo_id).sha
    owner.merge_pull_request(repo_id, 1)  # main moved, but on other files: a merge commit
    main = owner.model_info(repo_id)
    assert sorted(s.rfilename for s in main.siblings) == [".gitattributes", "a.txt", "c.txt"]
    path = hf_hub_download(repo_id, "a.txt", revision=main.sha, endpoint=hub.url)
    assert Path(path).read_bytes() == b"a2\n"
    merge_commit = owner.list_repo_commits(repo_id)[0]
    assert merge_commit.title == "Merge pull request #1: edit a, drop b"
    assert owner.get_discussion_details(repo_id, 1).merge_commit_oid == main.sha != before

    assert owner.get_discussion_details(repo_id, clash.pr_num).conflicting_files == ["c.txt"]
    with pytest.raises(HfHubHTTPError) as err:
        owner.merge_pull_request(repo_id, clash.pr_num)
    assert _status(err) == 409 and "c.txt" in str(err.value)
    assert owner.model_info(repo_id).sha == main.sha  # nothing moved
    assert owner.get_discussion_details(repo_id, clash.pr_num).status == "open"


def test_discussions_permissions(hub, people, unique):
    repo_id, owner = _repo(hub, people, unique)
    carol = hub.api(people["carol"][1])
    mine = carol.create_discussion(repo_id, "A question", description="How?")
    theirs = owner.create_discussion(repo_id, "Roadmap")
    empty_pr = owner.create_pull_request(repo_id, "Draft")
    assert (mine.num, theirs.num, empty_pr.num, empty_pr.status) == (1, 2, 3, "draft")
    carol.comment_discussion(repo_id, theirs.num, "+1")
    carol.change_discussion_status(repo_id, mine.num, "closed", comment="answered")
    statuses = {d.num: d.status for d in owner.get_repo_discussions(repo_id)}
    assert statuses == {1: "closed", 2: "open", 3: "draft"}
    opened = owner.get_repo_discussions(repo_id, discussion_status="open")
    assert [d.num for d in opened] == [3, 2]  # drafts count as open, as on the Hub
    closed = owner.get_repo_discussions(repo_id, discussion_status="closed")
    assert [d.num for d in closed] == [1]
    refused = [
        lambda: carol.change_discussion_status(repo_id, theirs.num, "closed"),
        lambda: carol.rename_discussion(repo_id, theirs.num, "Mine now"),
        lambda: carol.edit_discussion_comment(repo_id, theirs.num, theirs.events[0].id, "x"),
        lambda: carol.upload_file(
            path_or_fileobj=b"x", path_in_repo="x", repo_id=repo_id, revision="refs/pr/3"
        ),
        lambda: carol.upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id=repo_id),
        lambda: hub.api(people["readonly"][1]).create_discussion(repo_id, "read-only token"),
    ]
    for call in refused:
        with pytest.raises(HfHubHTTPError) as err:
            call()
        assert _status(err) == 403, err.value
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(endpoint=hub.url, token=False).comment_discussion(repo_id, 2, "anonymous")
    assert _status(err) == 401
    assert len(list(HfApi(endpoint=hub.url, token=False).get_repo_discussions(repo_id))) == 3
    hidden = owner.hide_discussion_comment(repo_id, theirs.num, theirs.events[0].id)
    assert hidden.hidden and hidden.content == ""
    owner.upload_file(
        path_or_fileobj=b"x", path_in_repo="x", repo_id=repo_id, revision=empty_pr.git_reference
    )
    with pytest.raises(HfHubHTTPError) as err:  # a draft is not merged until it is opened
        owner.merge_pull_request(repo_id, 3)
    assert _status(err) == 409
    owner.change_discussion_status(repo_id, 3, "open")
    owner.merge_pull_request(repo_id, 3)
    assert "x" in owner.list_repo_files(repo_id)


def _unseen_calls(hub, repo_id: str, token: str | bool) -> list:
    other = HfApi(endpoint=hub.url, token=token)
    reads = [
        lambda: list(other.get_repo_discussions(repo_id)),
        lambda: other.get_discussion_details(repo_id, 1),
        lambda: other.list_repo_refs(repo_id, include_pull_requests=True),
        lambda: other.list_repo_files(repo_id, revision="refs/pr/1"),
        lambda: hf_hub_download(
            repo_id, "s.txt", revision="refs/pr/1", endpoint=hub.url, token=token
        ),
    ]
    writes = [
        lambda: other.create_discussion(repo_id, "hi"),
        lambda: other.comment_discussion(repo_id, 1, "hi"),
        lambda: other.change_discussion_status(repo_id, 1, "closed"),
        lambda: other.merge_pull_request(repo_id, 1),
        lambda: other.create_commit(
            repo_id, [CommitOperationAdd("x", b"x")], commit_message="x", create_pr=True
        ),
    ]
    return reads, writes


def test_private_repo_discussions_do_not_leak(hub, people, unique):
    repo_id, owner = _repo(hub, people, unique, private=True)
    owner.create_commit(
        repo_id, [CommitOperationAdd("s.txt", b"secret")], commit_message="s", create_pr=True
    )
    owner.create_discussion(repo_id, "internal")
    reads, writes = _unseen_calls(hub, repo_id, people["carol"][1])
    for call in reads + writes:  # a stranger's token: the repo does not exist, on every route
        with pytest.raises(RepositoryNotFoundError):
            call()
    reads, writes = _unseen_calls(hub, repo_id, False)
    for call in reads:
        with pytest.raises(RepositoryNotFoundError):
            call()
    for call in writes:  # anonymous writes stop at 401 for every repo, existing or not
        with pytest.raises(HfHubHTTPError) as err:
            call()
        assert _status(err) == 401
    r = httpx2.get(f"{hub.url}/{repo_id}/resolve/refs%2Fpr%2F1/s.txt")
    assert r.status_code == 404 and r.headers["x-error-code"] == "RepoNotFound"
    assert b"secret" not in r.content


def test_discussions_survive_a_kill(server_process):
    proc = server_process.start()
    from zoo.hub.server import HubStore

    api = HfApi(endpoint=proc.url, token=HubStore(proc.root).admin_token())
    repo_id = api.create_repo("admin/durable").repo_id
    info = api.create_commit(
        repo_id, [CommitOperationAdd("f.txt", b"f")], commit_message="f", create_pr=True
    )
    api.comment_discussion(repo_id, info.pr_num, "kept")
    before = api.get_discussion_details(repo_id, info.pr_num)
    proc.kill()
    proc.start()
    assert api.get_discussion_details(repo_id, info.pr_num) == before
    api.merge_pull_request(repo_id, info.pr_num)
    assert "f.txt" in api.list_repo_files(repo_id)


def _hf(hub, token: str, *args: str) -> str:
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": token}
    env.pop("HF_HUB_OFFLINE", None)
    done = subprocess.run(
        [str(HF_CLI), "discussions", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def test_hf_discussions_cli(hub, people, unique):
    repo_id, owner = _repo(hub, people, unique)
    token = people["alice"][1]
    owner.create_discussion(repo_id, "Question")
    owner.create_commit(
        repo_id, [CommitOperationAdd("cli.txt", b"cli\n")], commit_message="CLI PR", create_pr=True
    )
    listed = json.loads(_hf(hub, token, "list", repo_id, "--status", "all", "--format", "json"))
    assert [(d["num"], d["title"]) for d in listed] == [(2, "CLI PR"), (1, "Question")]
    _hf(hub, token, "comment", repo_id, "2", "--body", "from the CLI")
    info = json.loads(_hf(hub, token, "info", repo_id, "2", "--format", "json"))
    assert info["is_pull_request"] is True and info["status"] == "open"
    assert "+cli" in _hf(hub, token, "diff", repo_id, "2")
    assert "Merged #2" in _hf(hub, token, "merge", repo_id, "2", "--yes")
    assert owner.get_discussion_details(repo_id, 2).status == "merged"
    assert "cli.txt" in owner.list_repo_files(repo_id)
