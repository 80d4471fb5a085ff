"""Who may see and change what: the access rules, in one place.

- Public repos are readable by everyone, anonymous included.
- Private repos are visible only to their owner and the admin; to everyone else they do not
  exist (404 RepoNotFound, never 403, so their names do not leak).
- Writes need a token (401 without one), write scope, and ownership (403 otherwise): the owner of
  a repo is the owner of its namespace; the admin may write everywhere.
- Contributions (discussions, comments, pull requests and their LFS uploads) need read access and a
  write-scoped token; who may push to, rename, close or merge what is decided in discussions.py.
"""

from __future__ import annotations

from zoo.hub.server import moves
from zoo.hub.server.auth import User
from zoo.hub.server.errors import HubError, forbidden, repo_not_found, unauthorized
from zoo.hub.server.http import Call
from zoo.hub.server.paths import is_valid_repo_id


def can_read(user: User | None, state: dict) -> bool:
    """True when `user` may see the repo."""
    if not state["private"]:
        return True
    return user is not None and (user.admin or user.name == state["owner"])


def can_write(user: User | None, state: dict) -> bool:
    """True when `user` may change the repo (commit, refs, delete)."""
    return user is not None and user.write and (user.admin or user.name == state["owner"])


def readable_repo(call: Call, repo_type: str, repo_id: str) -> dict:
    """Return the repo's state if the caller may read it, else 404 RepoNotFound."""
    state = call.store.repos.load(repo_type, repo_id) if is_valid_repo_id(repo_id) else None
    if state is None and is_valid_repo_id(repo_id):
        _redirect_if_moved(call, repo_type, repo_id)
    if state is None or not can_read(call.user, state):
        raise repo_not_found(repo_id)
    return state


def _redirect_if_moved(call: Call, repo_type: str, repo_id: str) -> None:
    """307 to the same URL under the repo's new name, for callers who may read it there."""
    new = moves.redirect_of(call.store.repos, repo_type, repo_id)
    state = call.store.repos.load(repo_type, new) if new else None
    old_part = f"/{repo_id}"
    if state is None or not can_read(call.user, state) or old_part not in call.raw_path:
        return
    url = call.raw_path.replace(old_part, f"/{new}", 1)
    if call.request.url.query:
        url += "?" + call.request.url.query
    raise HubError(
        307,
        "RepoMoved",
        f"Repository {repo_id} was moved to {new}",
        headers={"Location": call.base_url + url},
    )


def ungated(call: Call, state: dict) -> dict:
    """Return `state` if the caller may read a gated repo's files: its owner and the admin.

    The metadata of a gated repo stays public; its files answer 401/403 GatedRepo to everyone
    else (this Hub has no access requests, so no one else is ever on the authorized list).
    """
    user = call.user
    if not state.get("gated") or (user is not None and (user.admin or user.name == state["owner"])):
        return state
    prefix = "" if state["type"] == "model" else "datasets/"
    raise HubError(
        401 if user is None else 403,
        "GatedRepo",
        f"Access to {state['type']} {state['id']} is restricted and you are not in the authorized "
        f"list. Visit {call.base_url}/{prefix}{state['id']} to ask for access.",
    )


def writable_repo(call: Call, repo_type: str, repo_id: str) -> dict:
    """Return the repo's state if the caller may write: 401 anonymous, 404 unseen, 403 not owner."""
    if call.user is None:
        raise unauthorized()
    state = readable_repo(call, repo_type, repo_id)
    if not can_write(call.user, state):
        raise forbidden(
            f"{call.user.name} has no write access to {repo_id} "
            f"({'read-only token' if not call.user.write else 'owned by ' + state['owner']})"
        )
    return state


def contributable_repo(call: Call, repo_type: str, repo_id: str) -> dict:
    """Return the repo's state if the caller may open a discussion or pull request on it.

    As on the Hub, reading a repo is enough to contribute to it, with a token that may write
    (401 anonymous, 404 unseen, 403 for a read-only token).
    """
    if call.user is None:
        raise unauthorized()
    state = readable_repo(call, repo_type, repo_id)
    if not call.user.write:
        raise forbidden(
            f"the token of {call.user.name} is read-only; this action needs write scope"
        )
    return state


def namespace_for_create(call: Call, namespace: str) -> str:
    """Return who will own a new repo in `namespace`; 401/403 if the caller may not create there.

    The admin may create anywhere (a namespace named after a user still belongs to that user).
    A write token may create in its own namespace or claim one nobody owns.
    """
    user = call.user
    if user is None:
        raise unauthorized()
    if not user.write:
        raise forbidden(
            f"the token of {user.name} is read-only; creating a repo needs a write token"
        )
    owner = call.store.auth.namespace_owner(namespace)
    if owner is None:
        owner = call.store.auth.claim_namespace(namespace, user)
    if not user.admin and owner != user.name:
        raise forbidden(
            f"namespace {namespace!r} belongs to {owner}; {user.name} cannot create repos in it"
        )
    return owner
