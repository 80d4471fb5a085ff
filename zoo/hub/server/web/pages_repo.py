"""A repo's pages: the card, the files (tree, blob, raw), the history (commits, one commit)."""

from __future__ import annotations

import os
from itertools import islice
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from zoo.hub.server import commits as C
from zoo.hub.server import views
from zoo.hub.server.access import readable_repo, ungated
from zoo.hub.server.download import BlobResponse, parse_range
from zoo.hub.server.errors import entry_not_found
from zoo.hub.server.http import Call
from zoo.hub.server.paths import valid_path
from zoo.hub.server.routes_files import served_entry
from zoo.hub.server.web import files as F
from zoo.hub.server.web.raw import raw_headers
from zoo.hub.server.web.render import page, page_number
from zoo.hub.server.web.repo_view import RepoView, card_html, repo_view

COMMITS_PER_PAGE = 50


def open_repo(call: Call, rev: str | None = None) -> RepoView:
    """The repo the URL names, at `rev` (main by default); 404 if the visitor may not see it."""
    repo_type = "dataset" if call.groups[0] else "model"
    repo_id = f"{call.groups[1]}/{call.groups[2]}"
    state = readable_repo(call, repo_type, repo_id)
    rev = rev or "main"
    commit = call.store.repos.resolve_or_404(state, rev)
    return repo_view(call.store, state, commit, rev)


def _refs(view: RepoView) -> dict:
    return views.refs(view.state, include_prs=False)


async def repo_page(call: Call):
    """GET /{repo}: the model card with its metadata, beside the repo's facts."""

    def build() -> dict:
        view = open_repo(call)
        return {"repo": view, "card_html": card_html(call.store, view), "tab": "card"}

    return page(call, "repo.html", **await run_in_threadpool(build))


async def tree_page(call: Call):
    """GET /{repo}/tree/{rev}[/{path}]: a folder's files and sub-folders, the refs to switch to."""
    folder = (call.groups[4] or "").strip("/")

    def build() -> dict:
        view = open_repo(call, call.groups[3])  # a gated repo's file list is public, as its API's
        entries = F.listing(view.commit["tree"], folder)
        if entries is None:
            raise entry_not_found(folder, view.commit["id"])
        return {
            "repo": view,
            "tab": "files",
            "folder": folder,
            "crumbs": F.crumbs(folder),
            "entries": entries,
            "refs": _refs(view),
        }

    return page(call, "tree.html", **await run_in_threadpool(build))


def _file(call: Call) -> tuple[RepoView, str, dict]:
    view = open_repo(call, call.groups[3])
    ungated(call, view.state)
    path = valid_path(call.groups[4], status=404)
    return view, path, served_entry(view.state, view.commit, path)


async def blob_page(call: Call):
    """GET /{repo}/blob/{rev}/{path}: text shown; safetensors as a tensor table; else bytes."""

    def build() -> dict:
        view, path, entry = _file(call)
        tensors = F.tensor_table(call.store.objects, entry) if path.endswith(".safetensors") else []
        text = None if tensors else F.text_of(call.store.objects, entry)
        too_large = not tensors and text is None and entry["size"] > F.TEXT_MAX
        return {
            "repo": view,
            "tab": "files",
            "file": path,
            "crumbs": F.crumbs(path),
            "entry": entry,
            "text": text,
            "tensors": tensors,
            "too_large": too_large,
            "parameters": sum(t.parameters for t in tensors),
        }

    return page(call, "blob.html", **await run_in_threadpool(build))


async def raw_file(call: Call) -> Response:
    """GET /{repo}/raw/{rev}/{path}: the bytes, typed so they never run as a page of this Hub."""

    def locate() -> tuple[int, dict, dict]:
        _view, path, entry = _file(call)
        blob = call.store.objects.path(entry["sha256"])
        with open(blob, "rb") as f:
            sample = f.read(8192)
        return os.open(blob, os.O_RDONLY), entry, raw_headers(path, sample)

    fd, entry, headers = await run_in_threadpool(locate)
    try:
        span = parse_range(call.request.headers.get("range"), entry["size"])
    except Exception:
        os.close(fd)
        raise
    return BlobResponse(fd, entry["size"], span, headers, call.limits.download_chunk_bytes)


_HISTORY_SCAN = 2000  # commits a file's history looks through


def _touching(store, history, path: str):
    """The commits of `history` that changed `path` against their first parent."""
    for commit in islice(history, _HISTORY_SCAN):
        parent = store.repos.get_commit(commit["parents"][0]) if commit["parents"] else None
        if commit["tree"].get(path) != (parent["tree"].get(path) if parent else None):
            yield commit


async def commits_page(call: Call):
    """GET /{repo}/commits/{rev}[/{path}]: the first-parent history, newest first, paged (?p=N);
    with a path, only the commits that changed that file or folder entry."""
    page_no = page_number(call)
    path = call.groups[4] if len(call.groups) > 4 else None

    def build() -> dict:
        view = open_repo(call, call.groups[3])
        history = call.store.repos.history(view.state, view.rev)
        if path:
            history = _touching(call.store, history, valid_path(path, status=404))
        start = page_no * COMMITS_PER_PAGE
        found = list(islice(history, start, start + COMMITS_PER_PAGE + 1))
        return {
            "repo": view,
            "tab": "files",
            "file": path,
            "commits": found[:COMMITS_PER_PAGE],
            "page_no": page_no,
            "more": len(found) > COMMITS_PER_PAGE,
            "refs": _refs(view),
        }

    return page(call, "commits.html", **await run_in_threadpool(build))


async def commit_page(call: Call):
    """GET /{repo}/commit/{sha}: one commit and the files it changed against its first parent."""

    def build() -> dict:
        view = open_repo(call, call.groups[3])
        parents = view.commit["parents"]
        parent = call.store.repos.get_commit(parents[0]) if parents else None
        changed = C.changes(parent["tree"] if parent else {}, view.commit["tree"])
        old = parent["tree"] if parent else {}
        rows = [change_row(p, old.get(p), e) for p, e in sorted(changed.items())]
        return {"repo": view, "tab": "files", "changes": rows, "parent": parent}

    return page(call, "commit.html", **await run_in_threadpool(build))


def change_row(path: str, old: dict | None, new: dict | None) -> dict:
    status = "added" if old is None else "deleted" if new is None else "modified"
    return {
        "path": path,
        "status": status,
        "old_size": old["size"] if old else None,
        "new_size": new["size"] if new else None,
        "quoted": quote(path),
    }
