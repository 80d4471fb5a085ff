"""Renaming a repo (`POST /api/repos/move`) and the redirects its old name keeps.

A move writes the state under the new id and then removes the old one, both under the two repos'
locks (taken in key order, so two crossing moves cannot deadlock); then it records
`redirects/<type>/<key of old id>.json` -> new id. A request naming the old id is answered 307 to
the same URL under the new id, but only to callers who may read the new repo (a private repo's
new name does not leak). Creating a repo under the old name again drops the redirect.
"""

from __future__ import annotations

import contextlib

from zoo.hub.server.errors import conflict, repo_not_found
from zoo.hub.server.fsutil import atomic_write, dump_json, file_lock, fsync_dir, read_json
from zoo.hub.server.repos import RepoStore


def _redirect_path(repos: RepoStore, repo_type: str, repo_id: str):
    return repos.root / "redirects" / repo_type / (repos._key(repo_type, repo_id) + ".json")


def move(repos: RepoStore, repo_type: str, old: str, new: str, uid: str) -> dict:
    """Rename repo `old` (incarnation `uid`) to `new`; 409 if `new` exists. Return the new state."""
    locks = sorted({repos._lock_path(repo_type, old), repos._lock_path(repo_type, new)}, key=str)
    with contextlib.ExitStack() as stack:
        for lock in locks:
            stack.enter_context(file_lock(lock))
        state = repos.load(repo_type, old)
        if state is None or state["uid"] != uid:
            raise repo_not_found(old)
        if old.lower() != new.lower() and repos.load(repo_type, new) is not None:
            raise conflict(f"A {repo_type} repository called {new} already exists")
        state["id"] = new
        state["generation"] = state.get("generation", 0) + 1
        atomic_write(repos._state_path(repo_type, new), dump_json(state))
        if old.lower() != new.lower():
            repos._state_path(repo_type, old).unlink()
            fsync_dir(repos._state_path(repo_type, old).parent)
        _write_redirect(repos, repo_type, old, new)
        _drop_redirect(repos, repo_type, new)
        return state


def _write_redirect(repos: RepoStore, repo_type: str, old: str, new: str) -> None:
    if old.lower() == new.lower():
        return
    path = _redirect_path(repos, repo_type, old)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, dump_json({"from": old, "to": new}))


def _drop_redirect(repos: RepoStore, repo_type: str, repo_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        _redirect_path(repos, repo_type, repo_id).unlink()


def forget(repos: RepoStore, repo_type: str, repo_id: str) -> None:
    """Drop the redirect of `repo_id` (a repo was created under that name again)."""
    _drop_redirect(repos, repo_type, repo_id)


def redirect_of(repos: RepoStore, repo_type: str, repo_id: str) -> str | None:
    """The id repo `repo_id` was moved to (following chains of moves), or None."""
    seen: set[str] = set()
    target = None
    while repo_id.lower() not in seen and len(seen) < 16:
        seen.add(repo_id.lower())
        try:
            repo_id = read_json(_redirect_path(repos, repo_type, repo_id))["to"]
        except FileNotFoundError:
            break
        target = repo_id
    return target
