"""Routes that administer a repo: settings, move (rename), auth-check, super-squash, LFS files;
and the
answer for namespace-less ids (`gpt2`), which this Hub cannot hold (every repo has an owner's
namespace): 404 RepoNotFound, as for any repo that does not exist."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from zoo.hub.server import commits as C
from zoo.hub.server import lfs_files, moves
from zoo.hub.server.access import namespace_for_create, readable_repo, ungated, writable_repo
from zoo.hub.server.errors import bad_request, repo_not_found, revision_not_found
from zoo.hub.server.http import (
    Call,
    Strict,
    json_response,
    offset_param,
    page_response,
    read_model,
)
from zoo.hub.server.paths import pr_number, repo_type_from_name, valid_repo_id
from zoo.hub.server.routes_repos import RESERVED_NAMESPACES, repo_of


class SettingsBody(Strict):
    private: bool | None = None
    visibility: str | None = None
    gated: bool | str | None = None
    discussionsDisabled: bool | None = None


def _settings_change(body: SettingsBody) -> dict:
    change: dict = {}
    if body.visibility is not None:
        if body.visibility not in ("private", "public"):
            raise bad_request("visibility must be 'private' or 'public'")
        change["private"] = body.visibility == "private"
    elif body.private is not None:
        change["private"] = body.private
    if body.gated is not None:
        if body.gated not in (False, "auto", "manual"):
            raise bad_request("gated must be false, 'auto' or 'manual'")
        change["gated"] = body.gated
    if body.discussionsDisabled is not None:
        change["discussionsDisabled"] = body.discussionsDisabled
    return change


async def update_settings(call: Call):
    """PUT /api/{t}/{repo}/settings: private/visibility, gated, discussionsDisabled."""
    repo_type, repo_id = repo_of(call)
    change = _settings_change(await read_model(call, SettingsBody))
    state = await run_in_threadpool(writable_repo, call, repo_type, repo_id)

    def apply(current: dict) -> None:
        if current["uid"] != state["uid"]:
            raise repo_not_found(repo_id)
        current.update(change)

    await run_in_threadpool(call.store.repos.update, repo_type, repo_id, apply)
    return json_response({k: v for k, v in change.items()})


class MoveBody(Strict):
    fromRepo: str
    toRepo: str
    type: str | None = None


async def move_repo(call: Call):
    """POST /api/repos/move: rename a repo (the old name then redirects, 307, to the new one)."""
    body = await read_model(call, MoveBody)
    repo_type = repo_type_from_name(body.type)
    new = valid_repo_id(body.toRepo)
    namespace = new.split("/")[0]
    if namespace.lower() in RESERVED_NAMESPACES:
        raise bad_request(f"namespace {namespace!r} is reserved", code="InvalidRepoId")

    def run() -> dict:
        state = writable_repo(call, repo_type, body.fromRepo)
        namespace_for_create(call, namespace)
        moved = moves.move(call.store.repos, repo_type, state["id"], new, state["uid"])
        moved["owner"] = call.store.auth.namespace_owner(namespace) or moved["owner"]
        return call.store.repos.update(repo_type, new, lambda s: s.update(owner=moved["owner"]))

    await run_in_threadpool(run)
    return json_response({"url": f"{call.base_url}/{new}", "name": new})


async def auth_check(call: Call):
    """GET /api/{t}/{repo}/auth-check[/write]: 200 when the caller may read (or write) the repo."""
    repo_type, repo_id = repo_of(call)
    write = call.raw_path.endswith("/write")

    def check() -> None:
        if write:
            writable_repo(call, repo_type, repo_id)
        else:
            ungated(call, readable_repo(call, repo_type, repo_id))

    await run_in_threadpool(check)
    return json_response({"access": "write" if write else "read"})


class SquashBody(Strict):
    message: str | None = None


async def super_squash(call: Call):
    """POST /api/{t}/{repo}/super-squash/{branch}: replace the branch by one commit of its tree."""
    repo_type, repo_id = repo_of(call)
    branch = call.groups[3]
    body = await read_model(call, SquashBody)
    message = body.message or f"Super-squash branch '{branch}'"
    state = await run_in_threadpool(writable_repo, call, repo_type, repo_id)
    author = call.user.name if call.user else ""

    def change(current: dict) -> str:
        if current["uid"] != state["uid"]:
            raise repo_not_found(repo_id)
        refs, key = _branch_refs(current, branch)
        head = refs.get(key)
        if head is None:
            raise revision_not_found(repo_id, branch)
        tree = call.store.repos.get_commit(head)["tree"]
        title, _, description = message.partition("\n")
        squashed = C.make_commit(current["uid"], [], tree, title, description.strip(), author)
        call.store.repos.put_commit(squashed)
        refs[key] = squashed["id"]
        return squashed["id"]

    commit = await run_in_threadpool(call.store.repos.update, repo_type, repo_id, change)
    return json_response({"commitId": commit})


def _branch_refs(state: dict, branch: str) -> tuple[dict, str]:
    """The ref table and key a squashable branch lives under: a branch, or a PR (refs/pr/N)."""
    pr = pr_number(branch)
    if pr is not None:
        return state.setdefault("prs", {}), str(pr)
    return state["branches"], branch.removeprefix("refs/heads/")


async def no_namespace(call: Call):
    """Any /api/{t}/{name}... or /{name}/resolve/... of a namespace-less id: 404 RepoNotFound."""
    raise repo_not_found(call.groups[-1])


async def list_lfs_files(call: Call):
    """GET /api/{t}/{repo}/lfs-files: the repo's LFS objects (write access), Link-paged."""
    repo_type, repo_id = repo_of(call)
    offset, size = offset_param(call), call.limits.list_page_size

    def build() -> list[dict]:
        return lfs_files.listing(call.store.repos, writable_repo(call, repo_type, repo_id))

    items = await run_in_threadpool(build)
    more = offset + size < len(items)
    return page_response(call, items[offset : offset + size], offset + size if more else None)


class LfsDeletions(Strict):
    sha: list[str]
    rewriteHistory: bool = True


class LfsBatchBody(Strict):
    deletions: LfsDeletions


async def delete_lfs_files(call: Call):
    """POST /api/{t}/{repo}/lfs-files/batch {deletions: {sha, rewriteHistory}}: delete for good."""
    repo_type, repo_id = repo_of(call)
    body = await read_model(call, LfsBatchBody)
    state = await run_in_threadpool(writable_repo, call, repo_type, repo_id)

    def change(current: dict) -> int:
        if current["uid"] != state["uid"]:
            raise repo_not_found(repo_id)
        shas, rewrite = body.deletions.sha, body.deletions.rewriteHistory
        return lfs_files.delete(call.store.repos, current, shas, rewrite)

    deleted = await run_in_threadpool(call.store.repos.update, repo_type, repo_id, change)
    return json_response({"deleted": deleted})
