"""Repositories: their mutable state (refs, owner, visibility, linked LFS objects) and commits.

Layout: `repos/<type>/<key>.json` holds one repo's state, where key = sha256 of "type/id" in
lower case (repo ids never become filesystem paths); `commits/<id[:2]>/<id>.json` holds immutable
commit objects; `locks/<key>.lock` is the repo's cross-process lock.

Crash safety: every change to a repo is read-modify-write of its state file under the repo's
flock, and the new state is written with tmp + fsync + os.replace after every object and commit it
references is durable. So a SIGKILL at any instant leaves each repo at its old or its new state.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from zoo.hub.server import commits as C
from zoo.hub.server.errors import HubError, conflict, repo_not_found, revision_not_found
from zoo.hub.server.fsutil import (
    atomic_write,
    create_exclusive,
    dump_json,
    file_lock,
    fsync_dir,
    read_json,
)
from zoo.hub.server.objects import ObjectStore
from zoo.hub.server.paths import COMMIT_RE, pr_number

T = TypeVar("T")
_HEX_PREFIX = re.compile(r"^[0-9a-f]{5,40}$")
_SHORT_SHA = re.compile(r"^[0-9a-f]{7,39}$")


class RepoStore:
    """State files, commit objects and per-repo locks of one store root."""

    def __init__(self, root: Path, objects: ObjectStore):
        self.root, self.objects = root, objects
        for sub in ("repos/model", "repos/dataset", "commits", "locks"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self._commit_cache: OrderedDict[str, dict] = OrderedDict()
        self._cache_lock = threading.Lock()

    # -- locations ----------------------------------------------------------------------------

    @staticmethod
    def _key(repo_type: str, repo_id: str) -> str:
        return hashlib.sha256(f"{repo_type}/{repo_id.lower()}".encode()).hexdigest()

    def _state_path(self, repo_type: str, repo_id: str) -> Path:
        return self.root / "repos" / repo_type / (self._key(repo_type, repo_id) + ".json")

    def _lock_path(self, repo_type: str, repo_id: str) -> Path:
        return self.root / "locks" / (self._key(repo_type, repo_id) + ".lock")

    def _commit_path(self, cid: str) -> Path:
        return self.root / "commits" / cid[:2] / (cid + ".json")

    # -- state --------------------------------------------------------------------------------

    def load(self, repo_type: str, repo_id: str) -> dict | None:
        """Return the repo's current state (a fresh dict), or None if it does not exist."""
        try:
            return read_json(self._state_path(repo_type, repo_id))
        except FileNotFoundError:
            return None

    def all(self, repo_type: str) -> Iterator[dict]:
        """Yield the state of every repo of `repo_type` (in no particular order)."""
        for entry in os.scandir(self.root / "repos" / repo_type):
            if entry.name.endswith(".json") and not entry.name.startswith("."):
                try:
                    yield read_json(Path(entry.path))
                except FileNotFoundError:  # deleted meanwhile
                    continue

    def update(self, repo_type: str, repo_id: str, change: Callable[[dict], T]) -> T:
        """Run `change(state)` under the repo's lock and persist the mutated state atomically.

        `change` may raise HubError to abort; nothing is written then. Returns what it returns.
        """
        with file_lock(self._lock_path(repo_type, repo_id)):
            state = self.load(repo_type, repo_id)
            if state is None:
                raise repo_not_found(repo_id)
            result = change(state)
            state["generation"] = state.get("generation", 0) + 1
            atomic_write(self._state_path(repo_type, repo_id), dump_json(state))
            return result

    def create(self, repo_type: str, repo_id: str, owner: str, private: bool, author: str) -> dict:
        """Create a repo with an initial commit holding `.gitattributes`; 409 if it exists."""
        with file_lock(self._lock_path(repo_type, repo_id)):
            if self.load(repo_type, repo_id) is not None:
                raise conflict(f"You already created this {repo_type} repo: {repo_id}")
            uid = secrets.token_hex(16)
            sha = self.objects.put_bytes(C.DEFAULT_GITATTRIBUTES)
            tree = {".gitattributes": C.regular_entry(sha, C.DEFAULT_GITATTRIBUTES)}
            first = C.make_commit(uid, [], tree, "initial commit", "", author)
            self.put_commit(first)
            state = {
                "type": repo_type,
                "id": repo_id,
                "uid": uid,
                "owner": owner,
                "private": bool(private),
                "createdAt": first["date"],
                "branches": {"main": first["id"]},
                "tags": {},
                "lfs": [],
                "generation": 1,
            }
            atomic_write(self._state_path(repo_type, repo_id), dump_json(state))
            return state

    def delete(self, repo_type: str, repo_id: str) -> None:
        """Delete a repo's state (its refs and LFS links); 404 RepoNotFound if absent.

        Blobs and commits stay on disk (content-addressed, possibly shared); a recreated repo
        gets a new uid, so it can neither reach the old commits nor claim the old LFS objects.
        """
        with file_lock(self._lock_path(repo_type, repo_id)):
            path = self._state_path(repo_type, repo_id)
            if not path.exists():
                raise repo_not_found(repo_id)
            path.unlink()
            fsync_dir(path.parent)

    # -- commits ------------------------------------------------------------------------------

    def put_commit(self, commit: dict) -> None:
        """Write an immutable commit object durably (idempotent)."""
        create_exclusive(self._commit_path(commit["id"]), dump_json(commit))

    def get_commit(self, cid: str) -> dict | None:
        """Return commit `cid` (cached; commits are immutable) or None if it is not stored."""
        with self._cache_lock:
            hit = self._commit_cache.get(cid)
            if hit is not None:
                self._commit_cache.move_to_end(cid)
                return hit
        try:
            commit = read_json(self._commit_path(cid))
        except FileNotFoundError:
            return None
        with self._cache_lock:
            self._commit_cache[cid] = commit
            while len(self._commit_cache) > 512:
                self._commit_cache.popitem(last=False)
        return commit

    def resolve(self, state: dict, revision: str) -> str | None:
        """Return the commit id a branch, tag, PR (refs/pr/N) or commit id names, or None."""
        pr = pr_number(revision)
        if pr is not None:
            return state.get("prs", {}).get(str(pr))
        for prefix, refs in (("refs/heads/", "branches"), ("refs/tags/", "tags")):
            name = revision.removeprefix(prefix)
            if name in state[refs]:
                return state[refs][name]
        if COMMIT_RE.match(revision):
            commit = self.get_commit(revision)
            if commit is not None and commit["repo"] == state["uid"]:
                return revision
        if _SHORT_SHA.match(revision):
            return self._by_prefix(state, revision)
        return None

    def _by_prefix(self, state: dict, prefix: str) -> str | None:
        """The one commit of this repo whose id starts with `prefix` (git's short sha), or None."""
        try:
            names = os.listdir(self.root / "commits" / prefix[:2])
        except FileNotFoundError:
            return None
        found = []
        for name in names:
            if name.startswith(prefix) and name.endswith(".json"):
                commit = self.get_commit(name[:-5])
                if commit is not None and commit["repo"] == state["uid"]:
                    found.append(commit["id"])
        return found[0] if len(found) == 1 else None

    def resolve_or_404(self, state: dict, revision: str) -> dict:
        """Return the commit object `revision` names, or raise 404 RevisionNotFound."""
        cid = self.resolve(state, revision)
        commit = self.get_commit(cid) if cid else None
        if commit is None:
            raise revision_not_found(state["id"], revision)
        return commit

    def history(self, state: dict, revision: str) -> Iterator[dict]:
        """Yield the commits reachable from `revision` by first parents, newest first."""
        commit: dict | None = self.resolve_or_404(state, revision)
        while commit is not None:
            yield commit
            parents = commit["parents"]
            commit = self.get_commit(parents[0]) if parents else None

    # -- ref changes (all under the repo lock) --------------------------------------------------

    def commit(
        self,
        repo_type: str,
        repo_id: str,
        branch: str,
        operations: list[tuple[str, str, dict | None]],
        header: dict[str, Any],
        author: str,
        uid: str,
    ) -> str:
        """Apply `operations` on the current head of `branch`, move the branch; return the new id.

        With header["parentCommit"], refuse with 412 unless the head is still that commit; without
        it, apply on whatever the head is now, so concurrent commits never lose each other. LFS
        entries must name objects already linked to this repo (422 otherwise). `uid` is the repo
        incarnation the caller checked permissions on (a repo deleted and recreated meanwhile is
        404).
        """

        def change(state: dict) -> str:
            if state["uid"] != uid:
                raise repo_not_found(repo_id)
            if branch not in state["branches"]:
                raise revision_not_found(repo_id, branch)
            head = state["branches"][branch]
            check_parent(header.get("parentCommit"), head)
            new = self.build_commit(state, head, operations, header, author)
            state["branches"][branch] = new["id"]
            return new["id"]

        return self.update(repo_type, repo_id, change)

    def build_commit(
        self, state: dict, head: str, operations: list, header: dict[str, Any], author: str
    ) -> dict:
        """Store the commit of `operations` applied on commit `head` of this repo; move no ref.

        LFS entries must name objects already linked to this repo (422 otherwise). Call it under
        the repo's lock, from an update(), so the ref that will point at it moves atomically.
        """
        _check_lfs_linked(state, operations, self.objects)
        tree = C.apply_operations(self.get_commit(head)["tree"], operations)
        new = C.make_commit(
            state["uid"], [head], tree, header["summary"], header["description"], author
        )
        self.put_commit(new)
        return new

    def link_lfs(self, repo_type: str, repo_id: str, uid: str, oid: str) -> None:
        """Record that this repo proved possession of LFS object `oid` (it uploaded the bytes)."""

        def change(state: dict) -> None:
            if state["uid"] != uid:  # deleted and recreated since the upload URL was signed
                raise repo_not_found(repo_id)
            if oid not in state["lfs"]:
                state["lfs"] = sorted({*state["lfs"], oid})

        self.update(repo_type, repo_id, change)

    def set_ref(
        self, repo_type: str, repo_id: str, kind: str, name: str, revision: str | None
    ) -> str:
        """Create branch/tag `name` at `revision` (None: main's head); 409 if it exists.
        Return its commit."""

        def change(state: dict) -> str:
            refs = state["branches" if kind == "branch" else "tags"]
            if name in refs:
                where = "heads" if kind == "branch" else "tags"
                raise conflict(f"Reference refs/{where}/{name} already exists in {repo_id}")
            target = self.resolve(state, revision or "main")
            if target is None:
                raise revision_not_found(repo_id, revision or "main")
            refs[name] = target
            return target

        return self.update(repo_type, repo_id, change)

    def delete_ref(self, repo_type: str, repo_id: str, kind: str, name: str) -> None:
        """Delete branch/tag `name`; 404 if absent; the default branch cannot be deleted."""

        def change(state: dict) -> None:
            refs = state["branches" if kind == "branch" else "tags"]
            if kind == "branch" and name == "main":
                raise HubError(
                    403, "Forbidden", "Cannot delete refs/heads/main: it is the default branch"
                )
            if refs.pop(name, None) is None:
                raise revision_not_found(repo_id, name)

        self.update(repo_type, repo_id, change)


def check_parent(parent: str | None, head: str) -> None:
    """412 PreconditionFailed unless `parent` (a full or short commit id) names `head`."""
    if parent is None:
        return
    parent = parent.lower()
    if not _HEX_PREFIX.match(parent) or not head.startswith(parent):
        raise HubError(
            412,
            "PreconditionFailed",
            "The branch was updated since you opened this page. Please refresh and try again. "
            f"(parentCommit {parent} is not the head of the branch any more; head is {head})",
        )


def _check_lfs_linked(state: dict, operations: list, objects: ObjectStore) -> None:
    linked = set(state["lfs"])
    for kind, path, entry in operations:
        if kind != "add" or not entry["lfs"]:
            continue
        if entry["sha256"] not in linked or objects.size(entry["sha256"]) != entry["size"]:
            raise HubError(
                422,
                "LfsObjectNotFound",
                f"LFS object {entry['sha256']} for {path!r} was not uploaded to this repo "
                "(upload it through the LFS batch API first)",
            )
