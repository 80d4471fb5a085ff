"""Discussions and pull requests of a repo: their records, and every change to them.

Layout: `discussions/<uid[:2]>/<uid>.json` holds all discussions of one repo incarnation (uid, so
a repo deleted and recreated starts with none). A pull request N is also a ref: the repo state's
`prs[N]` is its head commit, so `refs/pr/N` resolves like a branch, and its commits are the
first-parent chain from that head down to `base`, the target's commit it was opened from.

Every change runs inside RepoStore.update, under the repo's flock: the discussions file is written
(tmp + fsync + rename) before the state file, so a SIGKILL leaves either both old, or the new
discussions with the old refs (a pull request whose head is still its base), never a torn file.
Permission rules as on the Hub: anyone who may contribute opens and comments; the author of a
discussion or a repo writer renames it, changes its status and pushes to a pull request; only a
writer merges; only a comment's author edits it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from zoo.hub.server import prmerge
from zoo.hub.server.auth import User
from zoo.hub.server.commits import now_iso
from zoo.hub.server.errors import (
    HubError,
    bad_request,
    forbidden,
    repo_not_found,
    revision_not_found,
)
from zoo.hub.server.fsutil import atomic_write, dump_json, read_json
from zoo.hub.server.repos import RepoStore, check_parent

T = TypeVar("T")
MAX_TITLE = 200
MAX_TEXT = 65536
MAX_DISCUSSIONS = 10_000
MAX_EVENTS = 1000
STATUSES = ("open", "closed")


def discussion_not_found(num: int) -> HubError:
    """404 for a discussion number the repo does not have."""
    return HubError(404, "DiscussionNotFound", f"Discussion #{num} not found")


def clean_title(title: str) -> str:
    """The title stripped; 400 if empty, longer than MAX_TITLE or holding control characters."""
    title = title.strip()
    if not title or len(title) > MAX_TITLE or any(ord(c) < 32 for c in title):
        raise bad_request(f"a title is 1 to {MAX_TITLE} characters on one line")
    return title


def clean_text(text: str) -> str:
    """A comment's text; 400 past MAX_TEXT characters."""
    if len(text) > MAX_TEXT:
        raise bad_request(f"a comment is at most {MAX_TEXT} characters")
    return text


class DiscussionStore:
    """The discussions of every repo of one store root."""

    def __init__(self, root: Path, repos: RepoStore):
        self.dir, self.repos = root / "discussions", repos
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, uid: str) -> Path:
        return self.dir / uid[:2] / f"{uid}.json"

    def load(self, state: dict) -> list[dict]:
        """All discussions of the repo, oldest first (fresh dicts)."""
        try:
            return read_json(self._path(state["uid"]))["items"]
        except FileNotFoundError:
            return []

    def get(self, state: dict, num: int) -> dict:
        """Discussion `num`, or 404."""
        items = self.load(state)
        if not 1 <= num <= len(items):
            raise discussion_not_found(num)
        return items[num - 1]

    def _change(self, state: dict, change: Callable[[dict, list[dict]], T]) -> T:
        """Run change(fresh_state, items) under the repo lock; persist the items, then the state."""
        uid = state["uid"]

        def run(fresh: dict) -> T:
            if fresh["uid"] != uid:  # deleted and recreated since the caller's access check
                raise repo_not_found(state["id"])
            items = self.load(fresh)
            result = change(fresh, items)
            atomic_write(self._path(uid), dump_json({"version": 1, "items": items}))
            return result

        return self.repos.update(state["type"], state["id"], run)

    def _modify(self, state: dict, num: int, change: Callable[[dict, dict], T]) -> T:
        def run(fresh: dict, items: list[dict]) -> T:
            if not 1 <= num <= len(items):
                raise discussion_not_found(num)
            if len(items[num - 1]["events"]) >= MAX_EVENTS:
                raise bad_request(f"discussion #{num} has {MAX_EVENTS} events, the most it may")
            return change(fresh, items[num - 1])

        return self._change(state, run)

    # -- opening ------------------------------------------------------------------------------

    def create(self, state: dict, title: str, text: str, pull_request: bool, user: User) -> int:
        """Open a discussion, or an empty draft pull request against main; return its number."""
        title, text = clean_title(title), clean_text(text)

        def run(fresh: dict, items: list[dict]) -> int:
            base = fresh["branches"]["main"] if pull_request else None
            item = _new_item(items, title, text, user.name, "main" if pull_request else None, base)
            if pull_request:
                item["status"] = "draft"
                fresh.setdefault("prs", {})[str(item["num"])] = base
            items.append(item)
            return item["num"]

        return self._change(state, run)

    def open_with_commit(
        self, state: dict, target: str, header: dict, operations: list, user: User
    ) -> tuple[int, str]:
        """Commit `operations` on a new pull request against branch `target`; (number, commit).

        The pull request starts from header["parentCommit"] when given, else from the head of
        `target`; its title is the first line of the commit's summary (at most MAX_TITLE
        characters), its first comment the commit's description.
        """

        first = (header["summary"].strip().splitlines() or ["Pull request"])[0]
        title = clean_title("".join(c if ord(c) >= 32 else " " for c in first)[:MAX_TITLE])

        def run(fresh: dict, items: list[dict]) -> tuple[int, str]:
            if target not in fresh["branches"]:
                raise revision_not_found(fresh["id"], target)
            base = fresh["branches"][target]
            if header.get("parentCommit"):
                base = self.repos.resolve(fresh, header["parentCommit"].lower()) or ""
                if not base:
                    raise revision_not_found(fresh["id"], header["parentCommit"])
            commit = self.repos.build_commit(fresh, base, operations, header, user.name)
            item = _new_item(items, title, header["description"], user.name, target, base)
            items.append(item)
            fresh.setdefault("prs", {})[str(item["num"])] = commit["id"]
            return item["num"], commit["id"]

        return self._change(state, run)

    # -- changes to one discussion ------------------------------------------------------------

    def check_push(self, state: dict, num: int, user: User, may_write: bool) -> None:
        """403/404 unless `user` may push to pull request `num` now (re-checked at commit)."""
        _check_pushable(self.get(state, num), num, user, may_write)

    def push(
        self, state: dict, num: int, header: dict, operations: list, user: User, may_write: bool
    ) -> str:
        """Commit `operations` on the head of pull request `num`; return the new commit id."""

        def run(fresh: dict, item: dict) -> str:
            _check_pushable(item, num, user, may_write)
            head = fresh.get("prs", {}).get(str(num)) or item["base"]
            check_parent(header.get("parentCommit"), head)
            commit = self.repos.build_commit(fresh, head, operations, header, user.name)
            fresh.setdefault("prs", {})[str(num)] = commit["id"]
            return commit["id"]

        return self._modify(state, num, run)

    def comment(self, state: dict, num: int, text: str, user: User) -> dict:
        """Add a comment; return its event."""
        text = clean_text(text)

        def run(_fresh: dict, item: dict) -> dict:
            if not text.strip():
                raise bad_request("a comment may not be empty")
            event = _comment_event(user.name, text)
            item["events"].append(event)
            return event

        return self._modify(state, num, run)

    def edit_comment(self, state: dict, num: int, cid: str, text: str, user: User) -> dict:
        """Replace the text of a comment (its author only); return the updated event."""
        text = clean_text(text)

        def run(_fresh: dict, item: dict) -> dict:
            event = _find_comment(item, cid)
            if event["author"] != user.name and not user.admin:
                raise forbidden("only the author of a comment may edit it")
            if event["data"]["hidden"]:
                raise forbidden("a hidden comment cannot be edited")
            revision = {"raw": text, "updatedAt": now_iso(), "author": user.name}
            event["data"].update(edited=True, latest=revision)
            event["data"]["history"].insert(0, revision)
            return event

        return self._modify(state, num, run)

    def hide_comment(self, state: dict, num: int, cid: str, user: User, may_write: bool) -> dict:
        """Hide a comment for good (its author or a writer); its text is dropped."""

        def run(_fresh: dict, item: dict) -> dict:
            event = _find_comment(item, cid)
            if event["author"] != user.name and not may_write:
                raise forbidden("only the author of a comment or a repo writer may hide it")
            gone = {"raw": "", "updatedAt": now_iso(), "author": user.name}
            event["data"].update(hidden=True, latest=gone, history=[])
            return event

        return self._modify(state, num, run)

    def rename(self, state: dict, num: int, title: str, user: User, may_write: bool) -> dict:
        """Change the title (its author or a writer); return the title-change event."""
        title = clean_title(title)

        def run(_fresh: dict, item: dict) -> dict:
            _check_owner(item, user, may_write, "rename")
            event = _event("title-change", user.name, {"from": item["title"], "to": title})
            item["title"] = title
            item["events"].append(event)
            return event

        return self._modify(state, num, run)

    def set_status(
        self, state: dict, num: int, status: str, text: str | None, user: User, may_write: bool
    ) -> dict:
        """Open or close (its author or a writer), with an optional comment; the status event."""
        if status not in STATUSES:
            raise bad_request(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        text = clean_text(text) if text else None

        def run(_fresh: dict, item: dict) -> dict:
            _check_owner(item, user, may_write, "change the status of")
            if item["status"] == "merged":
                raise forbidden(f"pull request #{num} is merged; its status cannot change")
            if text:
                item["events"].append(_comment_event(user.name, text))
            event = _event("status-change", user.name, {"status": status})
            item["status"] = status
            item["events"].append(event)
            return event

        return self._modify(state, num, run)

    def merge(self, state: dict, num: int, text: str | None, user: User) -> str:
        """Merge open pull request `num` into its target (the caller checked write access).

        Fast-forward when the target has not moved since the pull request's base; else a merge
        commit of the pull request's changes onto the target's head, or 409 naming the files both
        changed. Returns the commit the target now points at.
        """
        text = clean_text(text) if text else None

        def run(fresh: dict, item: dict) -> str:
            if not item["isPullRequest"]:
                raise bad_request(f"#{num} is a discussion, not a pull request")
            if item["status"] != "open":
                raise HubError(
                    409, "Conflict", f"pull request #{num} is {item['status']}, not open"
                )
            merged = self._merged_commit(fresh, item, user.name)
            fresh["branches"][item["target"]] = merged
            if text:
                item["events"].append(_comment_event(user.name, text))
            item["events"].append(_event("status-change", user.name, {"status": "merged"}))
            item.update(status="merged", mergeCommitId=merged)
            return merged

        return self._modify(state, num, run)

    def _merged_commit(self, state: dict, item: dict, author: str) -> str:
        if item["target"] not in state["branches"]:
            raise revision_not_found(state["id"], item["target"])
        target = state["branches"][item["target"]]
        head = state.get("prs", {}).get(str(item["num"])) or item["base"]
        if target == item["base"]:
            return head
        trees = [self.repos.get_commit(c)["tree"] for c in (item["base"], target, head)]
        tree, conflicts = prmerge.merge_trees(*trees)
        if conflicts:
            raise HubError(
                409,
                "Conflict",
                f"pull request #{item['num']} conflicts with {item['target']} on "
                + ", ".join(conflicts[:20]),
                extra={"conflictingFiles": conflicts},
            )
        commit = prmerge.merge_commit(state["uid"], [target, head], tree, item, author)
        self.repos.put_commit(commit)
        return commit["id"]

    # -- reading ------------------------------------------------------------------------------

    def commits_of(self, state: dict, item: dict, limit: int = 1000) -> list[dict]:
        """The pull request's commits, oldest first: its head back to (excluding) its base."""
        found, cid = [], state.get("prs", {}).get(str(item["num"]))
        while cid and cid != item["base"] and len(found) < limit:
            commit = self.repos.get_commit(cid)
            if commit is None:
                break
            found.append(commit)
            cid = commit["parents"][0] if commit["parents"] else None
        return found[::-1]

    def conflicts(self, state: dict, item: dict) -> list[str]:
        """Files an open pull request and its target both changed differently (else [])."""
        target = state["branches"].get(item["target"])
        head = state.get("prs", {}).get(str(item["num"]))
        if item["status"] != "open" or target in (None, item["base"]) or head is None:
            return []
        trees = [self.repos.get_commit(c)["tree"] for c in (item["base"], target, head)]
        return prmerge.merge_trees(*trees)[1]


def _new_item(
    items: list[dict], title: str, text: str, author: str, target: str | None, base: str | None
) -> dict:
    if len(items) >= MAX_DISCUSSIONS:
        raise bad_request(f"this repo has {MAX_DISCUSSIONS} discussions, the most it may")
    return {
        "num": len(items) + 1,
        "title": title,
        "status": "open",
        "author": author,
        "createdAt": now_iso(),
        "isPullRequest": target is not None,
        "target": target,
        "base": base,
        "mergeCommitId": None,
        "events": [_comment_event(author, text)],
    }


def _event(kind: str, author: str, data: dict[str, Any]) -> dict:
    return {
        "id": secrets.token_hex(12),
        "type": kind,
        "createdAt": now_iso(),
        "author": author,
        "data": data,
    }


def _comment_event(author: str, text: str) -> dict:
    latest = {"raw": text, "updatedAt": now_iso(), "author": author}
    return _event(
        "comment", author, {"edited": False, "hidden": False, "latest": latest, "history": [latest]}
    )


def _find_comment(item: dict, cid: str) -> dict:
    for event in item["events"]:
        if event["type"] == "comment" and event["id"] == cid.lower():
            return event
    raise HubError(404, "CommentNotFound", f"comment {cid[:40]!r} not found in #{item['num']}")


def _check_owner(item: dict, user: User, may_write: bool, action: str) -> None:
    if item["author"] != user.name and not may_write:
        raise forbidden(f"only the author of #{item['num']} or a repo writer may {action} it")


def _check_pushable(item: dict, num: int, user: User, may_write: bool) -> None:
    if not item["isPullRequest"]:
        raise bad_request(f"#{num} is a discussion, not a pull request", code="InvalidRef")
    if item["status"] in ("merged", "closed"):
        raise forbidden(f"pull request #{num} is {item['status']}; reopen it to push")
    if item["author"] != user.name and not may_write:
        raise forbidden(f"only the author of pull request #{num} or a repo writer may push to it")
