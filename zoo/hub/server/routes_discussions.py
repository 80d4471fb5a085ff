"""Routes of the discussions API (huggingface_hub's get_repo_discussions ... merge_pull_request).

Reading needs read access (a private repo is 404 RepoNotFound to others, on every route);
opening, commenting and changing need a write-scoped token with read access, and then the rules
of discussions.py (author or writer; merging: writers only).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from zoo.hub.server import discussion_views as V
from zoo.hub.server import prmerge
from zoo.hub.server.access import can_write, contributable_repo, readable_repo, writable_repo
from zoo.hub.server.discussions import discussion_not_found
from zoo.hub.server.errors import bad_request
from zoo.hub.server.http import Call, Strict, json_response, parse_uint, read_model
from zoo.hub.server.routes_repos import repo_of

PAGE_SIZE = 50  # the Hub's page of /discussions
_TYPES = {"all": None, "discussion": False, "pull_request": True}
# As on the Hub, "open" lists drafts too, and "closed" merged pull requests too.
_STATUSES = {
    "all": {"open", "draft", "closed", "merged"},
    "open": {"open", "draft"},
    "closed": {"closed", "merged"},
    "merged": {"merged"},
    "draft": {"draft"},
}
DEFAULT_DESCRIPTION = "Opened with the huggingface_hub Python library"


class CreateBody(Strict):
    title: str
    description: str = ""
    pullRequest: bool = False


class CommentBody(Strict):
    comment: str


class EditBody(Strict):
    content: str


class TitleBody(Strict):
    title: str


class StatusBody(Strict):
    status: str
    comment: str | None = None


class MergeBody(Strict):
    comment: str | None = None


def _num(call: Call) -> int:
    num = parse_uint(call.groups[3])
    if num is None:
        raise bad_request(f"invalid discussion number {call.groups[3][:50]!r}: expected 1, 2, ...")
    if num < 1:
        raise discussion_not_found(num)
    return num


def _filters(call: Call) -> tuple[bool | None, str, str, int]:
    q = call.request.query_params
    kind, status = q.get("type", "all"), q.get("status", "all")
    if kind not in _TYPES:
        raise bad_request(f"type must be one of {', '.join(_TYPES)}")
    if status not in _STATUSES:
        raise bad_request(f"status must be one of {', '.join(_STATUSES)}")
    page = parse_uint(q.get("p", "0"))
    if page is None:
        raise bad_request("p must be a page number 0, 1, ...")
    return _TYPES[kind], status, q.get("author", ""), page


async def list_discussions(call: Call):
    """GET /api/{t}/{repo}/discussions?type=&status=&author=&p=: newest first, 50 a page."""
    repo_type, repo_id = repo_of(call)
    is_pr, status, who, page = _filters(call)

    def build() -> dict:
        state = readable_repo(call, repo_type, repo_id)
        items = call.store.discussions.load(state)
        found = [
            i
            for i in reversed(items)
            if (is_pr is None or i["isPullRequest"] == is_pr)
            and i["status"] in _STATUSES[status]
            and (not who or i["author"] == who)
        ]
        start = min(page * PAGE_SIZE, len(found))
        return {
            "discussions": [V.summary(state, i) for i in found[start : start + PAGE_SIZE]],
            "count": len(found),
            "start": start,
            "numClosedDiscussions": sum(1 for i in items if i["status"] == "closed"),
        }

    return json_response(await run_in_threadpool(build))


async def create_discussion(call: Call):
    """POST /api/{t}/{repo}/discussions {title, description, pullRequest}: {num, url}."""
    repo_type, repo_id = repo_of(call)
    body = await read_model(call, CreateBody)

    def run() -> dict:
        state = contributable_repo(call, repo_type, repo_id)
        text = body.description.strip() or DEFAULT_DESCRIPTION
        num = call.store.discussions.create(state, body.title, text, body.pullRequest, call.user)
        return {
            "num": num,
            "url": V.url(call.base_url, state, num),
            "pullRequest": body.pullRequest,
        }

    return json_response(await run_in_threadpool(run))


async def discussion_details(call: Call):
    """GET /api/{t}/{repo}/discussions/{num}[?diff=1]: the discussion with its events."""
    repo_type, repo_id = repo_of(call)
    num = _num(call)

    def build() -> dict:
        state = readable_repo(call, repo_type, repo_id)
        store = call.store.discussions
        item = store.get(state, num)
        if not item["isPullRequest"]:
            return V.details(state, item, [], [], None)
        commits = store.commits_of(state, item)
        diff = _diff(call, state, item) if call.query_flag("diff") else None
        return V.details(state, item, commits, store.conflicts(state, item), diff)

    return json_response(await run_in_threadpool(build))


def _diff(call: Call, state: dict, item: dict) -> str:
    repos = call.store.repos
    head = state.get("prs", {}).get(str(item["num"])) or item["base"]
    base_tree, head_tree = (repos.get_commit(c)["tree"] for c in (item["base"], head))

    def read(entry: dict) -> bytes | None:
        try:
            return call.store.objects.path(entry["sha256"]).read_bytes()
        except FileNotFoundError:
            return None

    return prmerge.diff_text(base_tree, head_tree, read)


async def _contribute(call: Call, model, change):
    """Read the body, check the caller may contribute, run change(state, body, may_write)."""
    repo_type, repo_id = repo_of(call)
    num = _num(call)
    body = await read_model(call, model) if model else None

    def run():
        state = contributable_repo(call, repo_type, repo_id)
        return change(state, num, body, can_write(call.user, state))

    return json_response(await run_in_threadpool(run))


async def comment(call: Call):
    """POST .../discussions/{num}/comment {comment}: {newMessage: event}."""

    def change(state, num, body, _may_write):
        event = call.store.discussions.comment(state, num, body.comment, call.user)
        return {"newMessage": V.event(event)}

    return await _contribute(call, CommentBody, change)


async def edit_comment(call: Call):
    """POST .../discussions/{num}/comment/{id}/edit {content}: {updatedComment: event}."""

    def change(state, num, body, _may_write):
        store = call.store.discussions
        event = store.edit_comment(state, num, call.groups[4], body.content, call.user)
        return {"updatedComment": V.event(event)}

    return await _contribute(call, EditBody, change)


async def hide_comment(call: Call):
    """POST .../discussions/{num}/comment/{id}/hide: {updatedComment: event}."""

    def change(state, num, _body, may_write):
        store = call.store.discussions
        event = store.hide_comment(state, num, call.groups[4], call.user, may_write)
        return {"updatedComment": V.event(event)}

    return await _contribute(call, None, change)


async def rename(call: Call):
    """POST .../discussions/{num}/title {title}: {newTitle: event}."""

    def change(state, num, body, may_write):
        event = call.store.discussions.rename(state, num, body.title, call.user, may_write)
        return {"newTitle": V.event(event)}

    return await _contribute(call, TitleBody, change)


async def change_status(call: Call):
    """POST .../discussions/{num}/status {status, comment?}: {newStatus: event}."""

    def change(state, num, body, may_write):
        store = call.store.discussions
        event = store.set_status(state, num, body.status, body.comment, call.user, may_write)
        return {"newStatus": V.event(event)}

    return await _contribute(call, StatusBody, change)


async def merge(call: Call):
    """POST .../discussions/{num}/merge {comment?}: merge a pull request (write access)."""
    repo_type, repo_id = repo_of(call)
    num = _num(call)
    body = await read_model(call, MergeBody)

    def run() -> dict:
        state = writable_repo(call, repo_type, repo_id)
        oid = call.store.discussions.merge(state, num, body.comment, call.user)
        return {"mergeCommitId": oid, "num": num}

    return json_response(await run_in_threadpool(run))
