"""The server's error type: every refusal carries an HTTP status and a Hub `X-Error-Code`.

The official client types its exceptions by `X-Error-Code` (RepoNotFound, RevisionNotFound,
EntryNotFound) and shows `X-Error-Message`; a bare 404 breaks `repo_exists()` and turns a missing
file into a misleading "check your connection". So storage and routes raise HubError and the app
turns it into a JSON response with both headers (see app.error_response).
"""

from __future__ import annotations


class HubError(Exception):
    """A request refused with `status`, a machine-readable `code` and a one-line `message`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        extra: dict | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})  # more JSON body fields (a 409 on create carries "url")


def bad_request(message: str, code: str = "BadRequest") -> HubError:
    """400: the request is malformed (bad JSON, bad field, bad path)."""
    return HubError(400, code, message)


def repo_not_found(repo_id: str) -> HubError:
    """404 RepoNotFound; also what a private repo looks like to those who may not see it.

    The Hub's own words: the client's message already names the URL, and it appends a server
    message only when its own text does not contain it.
    """
    del repo_id  # the same answer for every id: the URL in the client's message names it
    return HubError(404, "RepoNotFound", "Repository not found")


def revision_not_found(repo_id: str, revision: str) -> HubError:
    """404 RevisionNotFound: the repo exists but has no such branch, tag or commit."""
    return HubError(404, "RevisionNotFound", f"Invalid rev id: {revision} in {repo_id}")


def entry_not_found(path: str, commit: str) -> HubError:
    """404 EntryNotFound with X-Repo-Commit, so the client caches the miss under that commit."""
    return HubError(
        404,
        "EntryNotFound",
        f"Entry not found: {path}",
        headers={"X-Repo-Commit": commit},
    )


def unauthorized(message: str = "Authorization header is required for this operation") -> HubError:
    """401: no (usable) credentials."""
    return HubError(401, "Unauthorized", message)


INVALID_CREDENTIALS = "Invalid credentials in Authorization header"


def forbidden(message: str) -> HubError:
    """403: authenticated, but not allowed."""
    return HubError(403, "Forbidden", message)


def conflict(message: str, extra: dict | None = None) -> HubError:
    """409: the thing already exists. Never uses the client's create-repo retry phrase."""
    return HubError(409, "Conflict", message, extra=extra)


def too_large(message: str) -> HubError:
    """413: a body over the configured cap."""
    return HubError(413, "PayloadTooLarge", message)


def storage_full() -> HubError:
    """507: the Hub's disk filled while storing a request's data."""
    return HubError(507, "InsufficientStorage", "the Hub's storage is full; nothing was stored")
