"""JSON shapes the official client parses: repo info, tree entries, refs, commits (pure)."""

from __future__ import annotations

import html

from zoo.hub.server import commits as C
from zoo.hub.server import model_meta
from zoo.hub.server.store import HubStore


def repo_info(
    store: HubStore, state: dict, commit: dict, *, blobs: bool, siblings: bool, card_data: bool
) -> dict:
    """Return the model/dataset info dict of `state` at `commit` (no Xet fields, ever)."""
    card, tags = store.card(state["type"], commit)
    info = {
        "_id": state["uid"],
        "id": state["id"],
        "author": state["id"].split("/")[0],
        "sha": commit["id"],
        "lastModified": commit["date"],
        "createdAt": state["createdAt"],
        "private": state["private"],
        "gated": state.get("gated", False),
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "tags": tags,
    }
    if state["type"] == "model":
        info["modelId"] = state["id"]
        for key in ("library_name", "pipeline_tag"):
            if isinstance(card.get(key), str):
                info[key] = card[key]
    if card_data and card:
        info["cardData"] = card
    if siblings and state["type"] == "model":
        _add_model_meta(info, store, commit["tree"])
    if siblings:
        info["siblings"] = [_sibling(p, e, blobs) for p, e in sorted(commit["tree"].items())]
        if blobs:
            info["usedStorage"] = sum(e["size"] for e in commit["tree"].values())
    return info


def _add_model_meta(info: dict, store: HubStore, tree: dict) -> None:
    found = model_meta.config(store.objects, tree)
    if found is not None:
        info["config"] = found
    counts = model_meta.safetensors(store.objects, tree)
    if counts is not None:
        info["safetensors"] = counts


def _sibling(path: str, entry: dict, blobs: bool) -> dict:
    item: dict = {"rfilename": path}
    if blobs:
        item["size"] = entry["size"]
        item["blobId"] = entry["oid"]
        if entry["lfs"]:
            item["lfs"] = {
                "size": entry["size"],
                "sha256": entry["sha256"],
                "pointerSize": C.pointer_size(entry),
            }
    return item


def file_entry(path: str, entry: dict, last: dict | None = None, xet: str | None = None) -> dict:
    """A /tree or /paths-info file item: git oid, size, the LFS block for LFS files, and the
    Xet hash of files stored through Xet (the client then downloads them through Xet)."""
    item: dict = {"type": "file", "path": path, "size": entry["size"], "oid": entry["oid"]}
    if entry["lfs"]:
        item["lfs"] = {
            "oid": entry["sha256"],
            "size": entry["size"],
            "pointerSize": C.pointer_size(entry),
        }
    if xet is not None:
        item["xetHash"] = xet
    if last is not None:
        item["lastCommit"] = last
    return item


def folder_entry(tree: dict, path: str, last: dict | None = None) -> dict:
    """A /tree or /paths-info folder item."""
    item: dict = {"type": "directory", "path": path, "oid": C.folder_oid(tree, path)}
    if last is not None:
        item["lastCommit"] = last
    return item


def last_commits(history, paths: list[str], limit: int = 1000) -> dict[str, dict]:
    """Map each path (file or folder) to {id, title, date} of the newest commit that changed it.

    Walks at most `limit` commits of `history` (newest first); paths unchanged over that window
    get the oldest commit walked.
    """
    found: dict[str, dict] = {}
    previous = None
    for n, commit in enumerate(history):
        if previous is not None:
            changed = set(C.changes(commit["tree"], previous["tree"]))
            for p in paths:
                if p not in found and any(c == p or c.startswith(p + "/") for c in changed):
                    found[p] = _short(previous)
        previous = commit
        if n >= limit or len(found) == len(paths):
            break
    for p in paths:
        found.setdefault(p, _short(previous))
    return found


def _short(commit: dict) -> dict:
    return {"id": commit["id"], "title": commit["title"], "date": commit["date"]}


def refs(state: dict, include_prs: bool) -> dict:
    """The /refs body: branches and tags with their target commits, pull requests if asked."""
    body = {
        "branches": [
            {"name": n, "ref": f"refs/heads/{n}", "targetCommit": c}
            for n, c in sorted(state["branches"].items())
        ],
        "converts": [],
        "tags": [
            {"name": n, "ref": f"refs/tags/{n}", "targetCommit": c}
            for n, c in sorted(state["tags"].items())
        ],
    }
    if include_prs:
        prs = sorted(state.get("prs", {}).items(), key=lambda nc: int(nc[0]))
        body["pullRequests"] = [
            {"name": f"refs/pr/{n}", "ref": f"refs/pr/{n}", "targetCommit": c} for n, c in prs
        ]
    return body


def commit_item(commit: dict, formatted: bool) -> dict:
    """One /commits item."""
    item = {
        "id": commit["id"],
        "authors": [{"user": commit["author"], "avatar": None}],
        "date": commit["date"],
        "title": commit["title"],
        "message": commit["message"],
    }
    if formatted:
        item["formatted"] = {
            "title": html.escape(commit["title"]),
            "message": html.escape(commit["message"]),
        }
    return item
