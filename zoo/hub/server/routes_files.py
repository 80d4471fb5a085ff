"""Routes that read files: /tree, /paths-info and /resolve (HEAD + GET, Range)."""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, quote

from starlette.concurrency import run_in_threadpool

from zoo.hub.server import views
from zoo.hub.server.access import readable_repo, ungated
from zoo.hub.server.commits import directories
from zoo.hub.server.download import BlobResponse, parse_range
from zoo.hub.server.errors import bad_request, entry_not_found
from zoo.hub.server.http import (
    Call,
    json_response,
    offset_param,
    page_response,
    parse_json,
    read_body,
)
from zoo.hub.server.paths import path_problem, valid_path
from zoo.hub.server.routes_repos import repo_of

_MAX_PATHS_INFO = 10_000


def _listing(tree: dict, folder: str, recursive: bool) -> list[tuple[str, str]]:
    """(kind, path) of what lies in `folder` ('' = root), sorted by path."""
    prefix = folder + "/" if folder else ""

    def inside(p: str) -> bool:
        return p.startswith(prefix) and (recursive or "/" not in p[len(prefix) :])

    items = [("file", p) for p in tree if inside(p)]
    items += [("directory", d) for d in directories(tree) if inside(d)]
    return sorted(items, key=lambda kp: kp[1])


async def tree(call: Call):
    """GET /api/{t}/{repo}/tree/{rev}[/{path}]?recursive=&expand=: files and folders, Link-paged."""
    repo_type, repo_id = repo_of(call)
    folder = (call.groups[4] or "").strip("/")
    if folder:
        valid_path(folder)
    expand, recursive = call.query_flag("expand"), call.query_flag("recursive")
    offset = offset_param(call)
    size = min(call.limits.tree_page_size, 50) if expand else call.limits.tree_page_size

    def build() -> tuple[list[dict], bool]:
        state = readable_repo(call, repo_type, repo_id)
        commit = call.store.repos.resolve_or_404(state, call.groups[3])
        files = commit["tree"]
        if folder and folder not in directories(files):
            raise entry_not_found(folder, commit["id"])
        listing = _listing(files, folder, recursive)
        page = listing[offset : offset + size]
        last = (
            views.last_commits(call.store.repos.history(state, commit["id"]), [p for _, p in page])
            if expand
            else {}
        )
        entries = [_entry(call, files, k, p, last.get(p)) for k, p in page]
        return entries, offset + size < len(listing)

    page, more = await run_in_threadpool(build)
    return page_response(call, page, offset + size if more else None)


def _entry(call: Call, files: dict, kind: str, path: str, last: dict | None) -> dict:
    if kind == "file":
        entry = files[path]
        xet = call.store.xet.xet_hash_of(entry["sha256"]) if entry["lfs"] else None
        return views.file_entry(path, entry, last, xet)
    return views.folder_entry(files, path, last)


async def paths_info(call: Call):
    """POST /api/{t}/{repo}/paths-info/{rev} (form `paths=a&paths=b&expand=`): known paths only."""
    repo_type, repo_id = repo_of(call)
    paths, expand = _paths_and_expand(call, await read_body(call))

    def build() -> list[dict]:
        state = readable_repo(call, repo_type, repo_id)
        commit = call.store.repos.resolve_or_404(state, call.groups[3])
        files, dirs = commit["tree"], directories(commit["tree"])
        known = [
            p for p in dict.fromkeys(paths) if path_problem(p) is None and (p in files or p in dirs)
        ]
        last = (
            views.last_commits(call.store.repos.history(state, commit["id"]), known)
            if expand
            else {}
        )
        kinds = [("file" if p in files else "directory", p) for p in known]
        return [_entry(call, files, k, p, last.get(p)) for k, p in kinds]

    return json_response(await run_in_threadpool(build))


def _paths_and_expand(call: Call, raw: bytes) -> tuple[list[str], bool]:
    if call.request.headers.get("content-type", "").startswith("application/json"):
        data = parse_json(raw or b"{}")
        if not isinstance(data, dict):
            raise bad_request('request body must be a JSON object {"paths": [...]}')
        paths, expand = data.get("paths", []), bool(data.get("expand", False))
    else:
        pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        paths = [v for k, v in pairs if k == "paths"]
        expand = any(k == "expand" and v.lower() in ("1", "true") for k, v in pairs)
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise bad_request("paths must be a list of strings")
    if len(paths) > _MAX_PATHS_INFO:
        raise bad_request(f"at most {_MAX_PATHS_INFO} paths per request")
    return [p.strip("/") for p in paths], expand


def served_entry(state: dict, commit: dict, path: str) -> dict:
    """The tree entry of `path` at `commit` if its bytes may be served, else 404 EntryNotFound
    (also for an LFS object unlinked from the repo: permanently deleted)."""
    entry = commit["tree"].get(path)
    if entry is None or (entry["lfs"] and entry["sha256"] not in state["lfs"]):
        raise entry_not_found(path, commit["id"])
    return entry


async def resolve(call: Call):
    """HEAD/GET /{prefix}{repo}/resolve/{rev}/{path}: the file with X-Repo-Commit and ETag headers.

    ETag is the git blob sha1 for regular files and the sha256 for LFS files (which also get
    X-Linked-Etag and X-Linked-Size); the client names cached blobs after it. A missing file is
    404 EntryNotFound carrying X-Repo-Commit, so the client caches the miss.
    """
    repo_type = "dataset" if call.groups[0] else "model"
    repo_id, revision = f"{call.groups[1]}/{call.groups[2]}", call.groups[3]
    path = valid_path(call.groups[4])

    def locate() -> tuple[int, dict, dict]:
        state = ungated(call, readable_repo(call, repo_type, repo_id))
        commit = call.store.repos.resolve_or_404(state, revision)
        entry = served_entry(state, commit, path)
        fd = os.open(call.store.objects.path(entry["sha256"]), os.O_RDONLY)
        return fd, commit, entry

    fd, commit, entry = await run_in_threadpool(locate)
    try:
        span = parse_range(call.request.headers.get("range"), entry["size"])
        headers = _file_headers(commit, entry, path)
        if entry["lfs"]:
            headers.update(await run_in_threadpool(_xet_headers, call, commit, entry))
    except Exception:
        os.close(fd)
        raise
    return BlobResponse(fd, entry["size"], span, headers, call.limits.download_chunk_bytes)


def _xet_headers(call: Call, commit: dict, entry: dict) -> dict[str, str]:
    """X-Xet-Hash and the token route, for files that arrived through Xet (the client then
    downloads them through Xet); none for git-lfs uploads, which stay plain HTTP."""
    xet = call.store.xet.xet_hash_of(entry["sha256"])
    if xet is None:
        return {}
    repo = f"{call.groups[1]}/{call.groups[2]}"
    kind = "datasets" if call.groups[0] else "models"
    route = f"{call.base_url}/api/{kind}/{repo}/xet-read-token/{commit['id']}"
    return {"X-Xet-Hash": xet, "Link": f'<{route}>; rel="xet-auth"'}


def _file_headers(commit: dict, entry: dict, path: str) -> dict[str, str]:
    etag = entry["sha256"] if entry["lfs"] else entry["oid"]
    name = path.rsplit("/", 1)[-1]
    headers = {
        "X-Repo-Commit": commit["id"],
        "ETag": f'"{etag}"',
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}",
        # User content in the Hub's origin: never sniffed into HTML, never run if opened.
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if entry["lfs"]:
        headers["X-Linked-Etag"] = f'"{etag}"'
        headers["X-Linked-Size"] = str(entry["size"])
    return headers
