"""A repo's Community tab: its discussions and pull requests, each with its comments rendered
(markdown, sanitised) and, for a pull request, its commits and the files it changes."""

from __future__ import annotations

import hashlib

from starlette.concurrency import run_in_threadpool

from zoo.hub.server import commits as C
from zoo.hub.server.discussions import discussion_not_found
from zoo.hub.server.http import Call, parse_uint
from zoo.hub.server.web.markdown import render_markdown
from zoo.hub.server.web.pages_repo import change_row, open_repo
from zoo.hub.server.web.render import page
from zoo.hub.server.web.repo_view import LruCache


async def discussions_page(call: Call):
    """GET /{repo}/discussions: every discussion and pull request, newest first."""

    def build() -> dict:
        view = open_repo(call)
        items = call.store.discussions.load(view.state)
        return {"repo": view, "tab": "community", "items": items[::-1]}

    return page(call, "discussions.html", **await run_in_threadpool(build))


_comments = LruCache(1024)


def _comment_html(view, raw: str) -> str:
    """A comment's markdown, rendered once per (repo, text)."""
    key = (view.url, hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest())
    return _comments.get(key, lambda: render_markdown(raw, view.url, "main"))


def _events(view, item: dict) -> list[dict]:
    out = []
    for e in item["events"]:
        row = {"type": e["type"], "author": e["author"], "date": e["createdAt"], "data": e["data"]}
        if e["type"] == "comment" and not e["data"]["hidden"]:
            row["html"] = _comment_html(view, e["data"]["latest"]["raw"])
        out.append(row)
    return out


def _pr_changes(call: Call, view, item: dict) -> list[dict]:
    head = view.state.get("prs", {}).get(str(item["num"]))
    base = call.store.repos.get_commit(item["base"]) if item["base"] else None
    tip = call.store.repos.get_commit(head) if head else None
    if tip is None:
        return []
    old = base["tree"] if base else {}
    return [change_row(p, old.get(p), e) for p, e in C.changes(old, tip["tree"]).items()]


async def discussion_page(call: Call):
    """GET /{repo}/discussions/{num}: one discussion or pull request."""
    num = parse_uint(call.groups[3])

    def build() -> dict:
        view = open_repo(call)
        if num is None:
            raise discussion_not_found(0)
        item = call.store.discussions.get(view.state, num)
        is_pr = item["isPullRequest"]
        return {
            "repo": view,
            "tab": "community",
            "item": item,
            "events": _events(view, item),
            "commits": call.store.discussions.commits_of(view.state, item) if is_pr else [],
            "changes": _pr_changes(call, view, item) if is_pr else [],
        }

    return page(call, "discussion.html", **await run_in_threadpool(build))
