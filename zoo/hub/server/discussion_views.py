"""JSON shapes of discussions that huggingface_hub parses (community.py), as pure functions.

Stored events name their author by user name; on the wire an author is {"name", "type", ...}
and a comment carries its rendered HTML. The same event renders the same way everywhere, so an
event returned by a change equals the one in the discussion's details (the client compares them).
"""

from __future__ import annotations

import html

from zoo.hub.server.paths import URL_PREFIX


def author(name: str) -> dict:
    """An author object as the Hub writes it."""
    return {"name": name, "fullname": name, "type": "user", "avatarUrl": "", "isPro": False}


def _render(raw: str) -> str:
    paragraphs = [p for p in raw.split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>\n" for p in paragraphs)


def _revision(rev: dict) -> dict:
    return {
        "raw": rev["raw"],
        "html": _render(rev["raw"]),
        "updatedAt": rev["updatedAt"],
        "author": author(rev["author"]),
    }


def event(stored: dict) -> dict:
    """One event (comment, status-change, title-change) as the client deserialises it."""
    data = dict(stored["data"])
    if stored["type"] == "comment":
        data = {
            "edited": data["edited"],
            "hidden": data["hidden"],
            "latest": _revision(data["latest"]),
            "history": [_revision(r) for r in data["history"]],
            "numEdits": max(len(data["history"]) - 1, 0),
            "reactions": [],
        }
    return {
        "id": stored["id"],
        "type": stored["type"],
        "createdAt": stored["createdAt"],
        "author": author(stored["author"]),
        "data": data,
    }


def commit_event(commit: dict) -> dict:
    """A commit pushed to a pull request, as an event."""
    return {
        "id": commit["id"],
        "type": "commit",
        "createdAt": commit["date"],
        "author": author(commit["author"]),
        "data": {"subject": commit["title"], "oid": commit["id"]},
    }


def summary(state: dict, item: dict) -> dict:
    """A discussion as /discussions lists it."""
    comments = sum(1 for e in item["events"] if e["type"] == "comment")
    return {
        "num": item["num"],
        "title": item["title"],
        "status": item["status"],
        "author": author(item["author"]),
        "createdAt": item["createdAt"],
        "isPullRequest": item["isPullRequest"],
        "repo": {"name": state["id"], "type": state["type"]},
        "numComments": comments,
        "pinned": False,
        "topReactions": [],
    }


def details(
    state: dict, item: dict, commits: list[dict], conflicts: list[str], diff: str | None
) -> dict:
    """A discussion with its events (commits interleaved by date) and, for a PR, its changes."""
    first, *rest = [event(e) for e in item["events"]]  # the opening comment stays first
    rest += [commit_event(c) for c in commits]
    rest.sort(key=lambda e: e["createdAt"])  # stable: same-millisecond events keep their order
    body = {**summary(state, item), "events": [first, *rest]}
    if item["isPullRequest"]:
        changes = {"base": f"refs/heads/{item['target']}"}
        if item["mergeCommitId"]:
            changes["mergeCommitId"] = item["mergeCommitId"]
        body.update(changes=changes, filesWithConflicts=conflicts)
        if diff is not None:
            body["diff"] = diff
    return body


def url(base_url: str, state: dict, num: int) -> str:
    """The web URL of discussion `num` (the client reads the PR number from its tail)."""
    return f"{base_url}/{URL_PREFIX[state['type']]}{state['id']}/discussions/{num}"
