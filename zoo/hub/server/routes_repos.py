"""Routes about repositories as a whole: create/delete, info, listing, refs, history, whoami."""

from __future__ import annotations

from itertools import islice

from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse

from zoo.hub.server import card_schema, expand, moves, views
from zoo.hub.server.access import can_read, namespace_for_create, readable_repo, writable_repo
from zoo.hub.server.cards import CardError, parse_front_matter
from zoo.hub.server.errors import (
    HubError,
    bad_request,
    conflict,
    revision_not_found,
    unauthorized,
)
from zoo.hub.server.http import (
    Call,
    Strict,
    json_response,
    offset_param,
    page_response,
    parse_uint,
    read_model,
)
from zoo.hub.server.paths import (
    URL_PREFIX,
    repo_type_from_name,
    repo_type_from_plural,
    valid_ref_name,
    valid_repo_id,
)

RESERVED_NAMESPACES = {"api", "datasets", "spaces", "models", "_lfs"}
_SORT_KEYS = {"lastModified", "createdAt", "downloads", "likes", "trendingScore"}


def repo_of(call: Call) -> tuple[str, str]:
    """(repo_type, repo_id) from the URL captures ('models'|'datasets', namespace, name)."""
    return repo_type_from_plural(call.groups[0]), f"{call.groups[1]}/{call.groups[2]}"


class CreateRepoBody(Strict):
    name: str
    organization: str | None = None
    type: str | None = None
    visibility: str | None = None
    private: bool | None = None


class DeleteRepoBody(Strict):
    name: str
    organization: str | None = None
    type: str | None = None


async def create_repo(call: Call):
    """POST /api/repos/create: new repo with its `.gitattributes` commit; 409 if it exists."""
    body = await read_model(call, CreateRepoBody)
    if call.user is None:
        raise unauthorized()
    namespace = body.organization or call.user.name
    repo_id = valid_repo_id(f"{namespace}/{body.name}")
    if namespace.lower() in RESERVED_NAMESPACES:
        raise bad_request(f"namespace {namespace!r} is reserved", code="InvalidRepoId")
    repo_type = repo_type_from_name(body.type)
    if body.visibility not in (None, "private", "public"):
        raise bad_request("visibility must be 'private' or 'public'")
    private = body.visibility == "private" or (body.visibility is None and bool(body.private))
    owner = await run_in_threadpool(namespace_for_create, call, namespace)
    url = f"{call.base_url}/{URL_PREFIX[repo_type]}{repo_id}"
    try:
        await run_in_threadpool(
            call.store.repos.create, repo_type, repo_id, owner, private, call.user.name
        )
    except HubError as exc:
        exc.extra["url"] = url  # the client reads it after swallowing the 409 (exist_ok=True)
        raise
    await run_in_threadpool(moves.forget, call.store.repos, repo_type, repo_id)
    return json_response({"url": url, "name": repo_id})


async def delete_repo(call: Call):
    """DELETE /api/repos/delete: drop the repo's refs and LFS links (404 RepoNotFound if absent)."""
    body = await read_model(call, DeleteRepoBody)
    namespace = body.organization or (call.user.name if call.user else "")
    repo_type = repo_type_from_name(body.type)
    repo_id = f"{namespace}/{body.name}"
    await run_in_threadpool(writable_repo, call, repo_type, repo_id)
    await run_in_threadpool(call.store.repos.delete, repo_type, repo_id)
    return json_response({"deleted": repo_id})


async def repo_info(call: Call):
    """GET /api/{t}/{repo}[/revision/{rev}]: info with sha, siblings (+blobs), cardData, tags."""
    repo_type, repo_id = repo_of(call)
    revision = call.groups[3] if len(call.groups) > 3 else "main"

    def build() -> dict:
        state = readable_repo(call, repo_type, repo_id)
        commit = call.store.repos.resolve_or_404(state, revision)
        blobs = call.query_flag("blobs")
        return views.repo_info(
            call.store, state, commit, blobs=blobs, siblings=True, card_data=True
        )

    names = expand.requested(call, repo_type)
    info = await run_in_threadpool(build)
    return json_response(info if names is None else expand.only(info, names))


async def list_repos(call: Call):
    """GET /api/models|datasets: filter (AND over tags), author, search, sort, full, cardData.

    Paged with Link headers."""
    repo_type = repo_type_from_plural(call.groups[0])
    q = call.request.query_params
    limit = q.get("limit")
    if limit is not None and not parse_uint(limit):
        raise bad_request(f"invalid limit {limit[:50]!r}: expected a positive integer")
    size = min(int(limit or call.limits.list_page_size), call.limits.list_page_size)
    offset = offset_param(call)
    names = expand.requested(call, repo_type)
    items = await run_in_threadpool(_matching_repos, call, repo_type)
    page = [
        views.repo_info(
            call.store,
            s,
            c,
            blobs=False,
            siblings=call.query_flag("full") or names is not None,
            card_data=call.query_flag("cardData") or names is not None,
        )
        for s, c in items[offset : offset + size]
    ]
    if names is not None:
        page = [expand.only(info, names) for info in page]
    more = offset + size < len(items)
    return page_response(call, page, offset + size if more else None)


def _matching_repos(call: Call, repo_type: str) -> list[tuple[dict, dict]]:
    q = call.request.query_params
    wanted = [t for f in q.getlist("filter") for t in f.split(",") if t]
    if q.get("pipeline_tag"):
        wanted.append(q["pipeline_tag"])
    author, search = q.get("author", "").lower(), q.get("search", "").lower()
    found = []
    for state in call.store.repos.all(repo_type):
        commit = call.store.repos.get_commit(state["branches"].get("main", ""))
        if commit is None or not can_read(call.user, state):
            continue
        if author and state["id"].split("/")[0].lower() != author:
            continue
        if search and search not in state["id"].lower():
            continue
        _card, tags = call.store.card(repo_type, commit)
        if all(t in tags for t in wanted):
            found.append((state, commit))
    return _sorted(found, q.get("sort"))


def _sorted(found: list[tuple[dict, dict]], sort: str | None) -> list[tuple[dict, dict]]:
    found.sort(key=lambda sc: sc[0]["id"].lower())
    if sort in ("lastModified", "createdAt"):
        field = (
            (lambda sc: sc[1]["date"])
            if sort == "lastModified"
            else (lambda sc: sc[0]["createdAt"])
        )
        found.sort(key=field, reverse=True)
    elif sort not in (None, "", "id") and sort not in _SORT_KEYS:
        raise bad_request(f"unknown sort key {sort!r}")
    return found


async def list_refs(call: Call):
    """GET /api/{t}/{repo}/refs: branches, converts (always empty), tags."""
    repo_type, repo_id = repo_of(call)
    state = await run_in_threadpool(readable_repo, call, repo_type, repo_id)
    return json_response(views.refs(state, call.query_flag("include_prs")))


async def list_commits(call: Call):
    """GET /api/{t}/{repo}/commits/{rev}: first-parent history, newest first, Link-paged."""
    repo_type, repo_id = repo_of(call)
    offset, size = offset_param(call), call.limits.commits_page_size
    formatted = "formatted" in call.request.query_params.getlist("expand[]")

    def build() -> list[dict]:
        state = readable_repo(call, repo_type, repo_id)
        return list(
            islice(call.store.repos.history(state, call.groups[3]), offset, offset + size + 1)
        )

    found = await run_in_threadpool(build)
    page = [views.commit_item(c, formatted) for c in found[:size]]
    return page_response(call, page, offset + size if len(found) > size else None)


class BranchBody(Strict):
    startingPoint: str | None = None


class TagBody(Strict):
    tag: str
    message: str | None = None


async def create_branch(call: Call):
    """POST /api/{t}/{repo}/branch/{name}: branch at startingPoint (default: main); 409 if taken."""
    repo_type, repo_id = repo_of(call)
    body = await read_model(call, BranchBody)
    name = valid_ref_name(call.groups[3], "branch")
    await run_in_threadpool(writable_repo, call, repo_type, repo_id)
    await run_in_threadpool(
        call.store.repos.set_ref, repo_type, repo_id, "branch", name, body.startingPoint
    )
    return json_response({"name": name})


async def delete_branch(call: Call):
    """DELETE /api/{t}/{repo}/branch/{name} (never main)."""
    repo_type, repo_id = repo_of(call)
    await run_in_threadpool(writable_repo, call, repo_type, repo_id)
    await run_in_threadpool(
        call.store.repos.delete_ref, repo_type, repo_id, "branch", call.groups[3]
    )
    return json_response({"deleted": call.groups[3]})


async def create_tag(call: Call):
    """POST /api/{t}/{repo}/tag/{revision}: tag body.tag at the path's revision; 409 if taken."""
    repo_type, repo_id = repo_of(call)
    body = await read_model(call, TagBody)
    state = await run_in_threadpool(writable_repo, call, repo_type, repo_id)
    if await run_in_threadpool(call.store.repos.resolve, state, call.groups[3]) is None:
        raise revision_not_found(repo_id, call.groups[3])  # the Hub checks the target first
    name = valid_ref_name(body.tag, "tag")
    if name in state["branches"]:
        raise conflict(f"a branch named {name!r} exists; branch and tag names must differ")
    await run_in_threadpool(
        call.store.repos.set_ref, repo_type, repo_id, "tag", name, call.groups[3]
    )
    return json_response({"name": name})


async def delete_tag(call: Call):
    """DELETE /api/{t}/{repo}/tag/{tag}."""
    repo_type, repo_id = repo_of(call)
    await run_in_threadpool(writable_repo, call, repo_type, repo_id)
    await run_in_threadpool(call.store.repos.delete_ref, repo_type, repo_id, "tag", call.groups[3])
    return json_response({"deleted": call.groups[3]})


async def whoami(call: Call):
    """GET /api/whoami-v2: the token's user (401 without a token)."""
    user = call.user
    if user is None:
        raise unauthorized()
    return json_response(
        {
            "type": "user",
            "id": user.name,
            "name": user.name,
            "fullname": user.name,
            "isPro": False,
            "orgs": [],
            "auth": {
                "type": "access_token",
                "accessToken": {"displayName": user.name, "role": user.role},
            },
        }
    )


class ValidateYamlBody(Strict):
    content: str
    repoType: str | None = None


async def validate_yaml(call: Call):
    """POST /api/validate-yaml: 400 {errors:[{message}]} when README front matter does not parse."""
    body = await read_model(call, ValidateYamlBody)
    try:
        card = parse_front_matter(body.content)
    except CardError as exc:
        found = [str(exc)]  # the app makes it header-safe: YAML tags may hold any character
    else:
        found = card_schema.problems(card)
    if found and "text/plain" in call.request.headers.get("accept", ""):
        headers = {"X-Error-Code": "InvalidYaml"}
        return PlainTextResponse(card_schema.as_text(found), status_code=400, headers=headers)
    if found:
        extra = {"errors": [{"message": m} for m in found], "warnings": []}
        raise HubError(400, "InvalidYaml", "; ".join(found), extra=extra)
    warnings = [] if card else [{"message": card_schema.EMPTY_WARNING}]
    return json_response({"errors": [], "warnings": warnings})
