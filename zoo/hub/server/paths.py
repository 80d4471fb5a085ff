"""Validation of names that arrive from the network: repo types and ids, refs, paths in a repo.

Paths in a repo are never mapped to filesystem paths (content lives under its sha256), so these
checks are about keeping repo trees sane and git-compatible, not about the server's own disk.
"""

from __future__ import annotations

import re

from zoo.errors import UserError
from zoo.hub.server.errors import HubError, bad_request
from zoo.types import check_repo_id, check_revision

REPO_TYPES = {"models": "model", "datasets": "dataset"}
URL_PREFIX = {"model": "", "dataset": "datasets/"}
MAX_PATH_BYTES = 1024
MAX_SEGMENT_BYTES = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_REF_OK = re.compile(r"^[A-Za-z0-9._/-]{1,200}$")
_PR_REF = re.compile(r"refs/pr/([1-9][0-9]{0,8})")


def repo_type_from_plural(plural: str) -> str:
    """Map the URL segment `models` / `datasets` to the repo type; 400 for anything else."""
    try:
        return REPO_TYPES[plural]
    except KeyError:
        raise bad_request(
            f"unsupported repo type {plural!r}: this server hosts models and datasets"
        ) from None


def repo_type_from_name(name: str | None) -> str:
    """Map a body's `type` field (None = model) to a repo type; 400 for spaces and the like."""
    name = name or "model"
    if name not in URL_PREFIX:
        raise bad_request(f"unsupported repo type {name!r}: expected 'model' or 'dataset'")
    return name


def valid_repo_id(repo_id: str) -> str:
    """Return repo_id if it is a valid `namespace/name`; 400 naming the rule otherwise."""
    try:
        return check_repo_id(repo_id)
    except UserError as exc:
        raise bad_request(str(exc), code="InvalidRepoId") from None


def is_valid_repo_id(repo_id: str) -> bool:
    """True when repo_id is a well-formed `namespace/name`."""
    try:
        check_repo_id(repo_id)
    except UserError:
        return False
    return True


def pr_number(revision: str) -> int | None:
    """The N of a pull-request ref `refs/pr/N`, or None when `revision` is not one."""
    match = _PR_REF.fullmatch(revision)
    return int(match.group(1)) if match else None


def valid_ref_name(name: str, kind: str) -> str:
    """Return a new branch/tag name if git and the Hub client can both use it; 400 otherwise."""
    try:
        check_revision(name)
    except UserError as exc:
        raise bad_request(str(exc), code="InvalidRef") from None
    if (
        not _REF_OK.match(name)
        or COMMIT_RE.match(name)
        or name.startswith(("-", "refs/", "."))
        or name.endswith((".lock", "."))
        or name == "HEAD"
    ):
        raise bad_request(
            f"invalid {kind} name {name!r}: use letters, digits, '.', '_', '-', '/' "
            "(not a 40-hex id, not starting with 'refs/', '-' or '.')",
            code="InvalidRef",
        )
    return name


def path_problem(path: object) -> str | None:
    """Return why `path` cannot name a file in a repo, or None if it can."""
    if not isinstance(path, str) or not path:
        return "path must be a non-empty string"
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        return f"path longer than {MAX_PATH_BYTES} bytes"
    if path.startswith("/"):
        return "path must be relative (no leading '/')"
    if "\\" in path:
        return "path must not contain a backslash"
    if _CONTROL.search(path):
        return "path must not contain NUL or control characters"
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            return "path must not contain empty, '.' or '..' segments"
        if segment.lower() == ".git":
            return "path must not contain a '.git' component"
        if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            return f"path segment longer than {MAX_SEGMENT_BYTES} bytes"
    return None


def valid_path(path: object, status: int = 400) -> str:
    """Return `path` if it can name a file in a repo; InvalidPath naming the rule otherwise.

    `status` is 400 for a path read, 422 for a path written (the Hub's status for both).
    """
    problem = path_problem(path)
    if problem:
        raise HubError(status, "InvalidPath", f"invalid path {path!r}: {problem}")
    return path  # type: ignore[return-value]
