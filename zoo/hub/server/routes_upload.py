"""Routes that write files: preupload, git-lfs batch / PUT / verify, and NDJSON commits.

LFS flow: the batch answers "present" only for objects already linked to *this* repo (proof of
possession), otherwise an HMAC-signed, short-lived PUT URL (the client PUTs without auth). The PUT
streams to a staging file while hashing, refuses a size or sha256 mismatch, fsyncs, renames into
the content-addressed store, then links the object to the repo. A commit may reference an LFS
object only once it is linked (422 otherwise). Anyone who may contribute to a repo (read access,
a write-scoped token) may upload objects to it, because a pull request may carry LFS files; the
commit that references them is checked as any other (main: writers; refs/pr/N: discussions.py).
"""

from __future__ import annotations

import base64
import time

from starlette.concurrency import run_in_threadpool

from zoo.hub.server import commits as C
from zoo.hub.server.access import can_write, contributable_repo, writable_repo
from zoo.hub.server.discussion_views import url as discussion_url
from zoo.hub.server.errors import (
    HubError,
    bad_request,
    repo_not_found,
    revision_not_found,
    storage_full,
)
from zoo.hub.server.http import (
    Call,
    Strict,
    json_response,
    parse_json,
    parse_model,
    parse_uint,
    read_model,
    receive_into,
    stream_chunks,
)
from zoo.hub.server.objects import SHA256_RE, ObjectMismatch
from zoo.hub.server.paths import URL_PREFIX, pr_number, valid_path
from zoo.hub.server.routes_repos import repo_of

LFS_JSON = "application/vnd.git-lfs+json"
_MAX_PREUPLOAD_FILES = 1000


class PreuploadFile(Strict):
    path: str
    sample: str = ""
    size: int


class PreuploadBody(Strict):
    files: list[PreuploadFile]
    gitIgnore: str | None = None


async def preupload(call: Call):
    """POST /api/{t}/{repo}/preupload/{rev}: per file 'lfs' or 'regular', plus the current oid."""
    repo_type, repo_id = repo_of(call)
    body = await read_model(call, PreuploadBody)
    if len(body.files) > _MAX_PREUPLOAD_FILES:
        raise bad_request(f"at most {_MAX_PREUPLOAD_FILES} files per preupload call")

    def build() -> dict:
        state = _commit_access(call, repo_type, repo_id)
        commit = call.store.repos.resolve_or_404(state, call.groups[3])
        gitignore = body.gitIgnore if body.gitIgnore is not None else _repo_gitignore(call, commit)
        files = [_preupload_item(commit["tree"], f, gitignore) for f in body.files]
        return {"files": files, "commitOid": commit["id"]}

    return json_response(await run_in_threadpool(build))


def _repo_gitignore(call: Call, commit: dict) -> str | None:
    entry = commit["tree"].get(".gitignore")
    if entry is None or entry["size"] > 1 << 20:
        return None
    return call.store.objects.path(entry["sha256"]).read_bytes().decode("utf-8", "replace")


def _preupload_item(tree: dict, f: PreuploadFile, gitignore: str | None) -> dict:
    path = valid_path(f.path, 422)
    try:
        sample = base64.b64decode(f.sample, validate=True)[:512]
    except ValueError:  # binascii.Error, or non-ASCII text
        raise bad_request(f"sample of {path!r} is not base64") from None
    existing = tree.get(path)
    oid = None
    if existing is not None:
        oid = existing["sha256"] if existing["lfs"] else existing["oid"]
    mode = C.upload_mode(path, f.size, sample)
    return {
        "path": path,
        "uploadMode": mode,
        "shouldIgnore": C.gitignored(path, gitignore),
        "oid": oid,
    }


class LfsObject(Strict):
    oid: str
    size: int


class BatchBody(Strict):
    operation: str
    objects: list[LfsObject]
    transfers: list[str] | None = None
    hash_algo: str | None = None


def _lfs_repo(call: Call) -> tuple[str, str]:
    return ("dataset" if call.groups[0] else "model"), f"{call.groups[1]}/{call.groups[2]}"


def _upload_message(repo_type: str, repo_id: str, uid: str, oid: str, size: int, exp: int) -> str:
    return f"lfs-upload\n{repo_type}\n{repo_id}\n{uid}\n{oid}\n{size}\n{exp}"


async def lfs_batch(call: Call):
    """POST /{prefix}{repo}.git/info/lfs/objects/batch: upload instructions per object."""
    repo_type, repo_id = _lfs_repo(call)
    body = await read_model(call, BatchBody)
    if body.operation != "upload":
        raise HubError(
            422,
            "NotSupported",
            "only the 'upload' LFS operation is supported; download via /resolve",
        )
    if body.hash_algo not in (None, "sha256"):
        raise HubError(
            422, "NotSupported", f"hash_algo {body.hash_algo!r} is not supported (use sha256)"
        )
    state = await run_in_threadpool(contributable_repo, call, repo_type, repo_id)
    linked = set(state["lfs"])
    objects = [await run_in_threadpool(_batch_item, call, state, o, linked) for o in body.objects]
    return json_response(
        {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
        headers={"Content-Type": LFS_JSON},
    )


def _batch_item(call: Call, state: dict, obj: LfsObject, linked: set[str]) -> dict:
    if not SHA256_RE.match(obj.oid) or obj.size < 0:
        return {
            **obj.model_dump(),
            "error": {"code": 422, "message": "oid must be a sha256 hex digest, size >= 0"},
        }
    if obj.size > call.limits.max_lfs_bytes:
        return {
            **obj.model_dump(),
            "error": {"code": 413, "message": "object larger than this Hub accepts"},
        }
    if obj.oid in linked and call.store.objects.size(obj.oid) == obj.size:
        return {"oid": obj.oid, "size": obj.size}  # no actions: already uploaded to this repo
    exp = int(time.time()) + call.limits.upload_url_ttl_s
    repo_type, repo_id = state["type"], state["id"]
    sig = call.store.auth.sign(
        _upload_message(repo_type, repo_id, state["uid"], obj.oid, obj.size, exp)
    )
    base = f"{call.base_url}/{URL_PREFIX[repo_type]}{repo_id}.git/info/lfs/objects"
    return {
        "oid": obj.oid,
        "size": obj.size,
        "authenticated": True,
        "actions": {
            "upload": {
                "href": f"{base}/{obj.oid}/{obj.size}?exp={exp}&sig={sig}",
                "expires_in": call.limits.upload_url_ttl_s,
            },
            "verify": {"href": f"{base}/verify"},
        },
    }


async def lfs_put(call: Call):
    """PUT <signed href>: stream, hash and size-check the object, publish it, link it."""
    repo_type, repo_id = _lfs_repo(call)
    oid, size = call.groups[3], int(call.groups[4])
    state = await run_in_threadpool(_check_signed_upload, call, repo_type, repo_id, oid, size)
    declared = call.request.headers.get("content-length")
    if declared is not None and declared != str(size):
        raise HubError(
            400, "ObjectMismatch", f"Content-Length {declared} differs from the signed size {size}"
        )
    writer = await run_in_threadpool(call.store.objects.writer, oid, size)
    try:
        if not await receive_into(call, writer, call.limits.max_lfs_bytes):
            raise storage_full()
        await run_in_threadpool(writer.publish)
    except ObjectMismatch as exc:
        raise HubError(400, "ObjectMismatch", f"upload refused: {exc}") from None
    finally:
        await run_in_threadpool(writer.discard)
    await run_in_threadpool(call.store.repos.link_lfs, repo_type, state["id"], state["uid"], oid)
    return json_response({"oid": oid, "size": size})


def _check_signed_upload(call: Call, repo_type: str, repo_id: str, oid: str, size: int) -> dict:
    q = call.request.query_params
    exp = parse_uint(q.get("exp", ""))
    if exp is None or exp < time.time():
        raise HubError(
            403, "Forbidden", "upload URL expired or malformed; ask the batch API for a new one"
        )
    if size > call.limits.max_lfs_bytes:
        raise HubError(413, "PayloadTooLarge", "object larger than this Hub accepts")
    state = call.store.repos.load(repo_type, repo_id)
    message = _upload_message(repo_type, repo_id, state["uid"] if state else "", oid, size, exp)
    if not call.store.auth.check_signature(message, q.get("sig", "")):
        raise HubError(403, "Forbidden", "invalid upload URL signature")
    if state is None:
        raise repo_not_found(repo_id)
    return state


class VerifyBody(Strict):
    oid: str
    size: int


async def lfs_verify(call: Call):
    """POST <verify href> {oid, size}: 200 only if the object is stored and linked to this repo."""
    repo_type, repo_id = _lfs_repo(call)
    body = await read_model(call, VerifyBody)
    state = await run_in_threadpool(contributable_repo, call, repo_type, repo_id)
    if body.oid not in state["lfs"] or call.store.objects.size(body.oid) != body.size:
        raise HubError(
            404,
            "LfsObjectNotFound",
            f"LFS object {body.oid} ({body.size} bytes) was not uploaded to {repo_id}",
        )
    return json_response({"oid": body.oid, "size": body.size})


class CommitHeader(Strict):
    summary: str
    description: str = ""
    parentCommit: str | None = None


class FileOp(Strict):
    path: str
    content: str
    encoding: str = "base64"


class LfsFileOp(Strict):
    path: str
    oid: str
    algo: str = "sha256"
    size: int | None = None


class DeleteOp(Strict):
    path: str


async def commit(call: Call):
    """POST /api/{t}/{repo}/commit/{branch}: apply an NDJSON commit atomically (412: stale head)."""
    repo_type, repo_id = repo_of(call)
    if call.query_flag("create_pr") or pr_number(call.groups[3]) is not None:
        return await _commit_pr(call, repo_type, repo_id)
    branch = call.groups[3].removeprefix("refs/heads/")
    state = await run_in_threadpool(writable_repo, call, repo_type, repo_id)
    if branch not in state["branches"]:
        if call.store.repos.resolve(state, call.groups[3]):
            raise bad_request(
                f"{call.groups[3]!r} is not a branch: commits go to branches", code="InvalidRef"
            )
        raise revision_not_found(repo_id, call.groups[3])
    header, operations = await _read_commit(call)
    cid = await run_in_threadpool(
        call.store.repos.commit,
        repo_type,
        repo_id,
        branch,
        operations,
        header,
        call.user.name,
        state["uid"],
    )
    url = f"{call.base_url}/{URL_PREFIX[repo_type]}{state['id']}/commit/{cid}"
    return json_response(
        {"success": True, "commitOid": cid, "commitUrl": url, "pullRequestUrl": None}
    )


def _commit_access(call: Call, repo_type: str, repo_id: str) -> dict:
    """The repo's state if the caller may commit to the revision in the URL (or open a PR)."""
    pr = pr_number(call.groups[3])
    if not call.query_flag("create_pr") and pr is None:
        return writable_repo(call, repo_type, repo_id)
    state = contributable_repo(call, repo_type, repo_id)
    if pr is not None and not call.query_flag("create_pr"):
        call.store.discussions.check_push(state, pr, call.user, can_write(call.user, state))
    return state


async def _commit_pr(call: Call, repo_type: str, repo_id: str):
    """A commit that opens a pull request (?create_pr=1) or lands on one (refs/pr/N)."""
    state = await run_in_threadpool(_commit_access, call, repo_type, repo_id)
    header, operations = await _read_commit(call)
    store, user, revision = call.store.discussions, call.user, call.groups[3]
    if call.query_flag("create_pr"):
        branch = revision.removeprefix("refs/heads/")
        num, cid = await run_in_threadpool(
            store.open_with_commit, state, branch, header, operations, user
        )
    else:
        num = pr_number(revision)
        may_write = can_write(user, state)
        cid = await run_in_threadpool(store.push, state, num, header, operations, user, may_write)
    url = f"{call.base_url}/{URL_PREFIX[repo_type]}{state['id']}/commit/{cid}"
    return json_response(
        {
            "success": True,
            "commitOid": cid,
            "commitUrl": url,
            "pullRequestUrl": discussion_url(call.base_url, state, num),
        }
    )


async def _read_commit(call: Call) -> tuple[dict, list]:
    header: dict | None = None
    operations: list = []
    async for item in _ndjson(call):
        if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
            raise bad_request('each commit line must be {"key": ..., "value": {...}}')
        key, value = item.get("key"), item["value"]
        if key == "header":
            header = parse_model(CommitHeader, value).model_dump()
        elif header is None:
            raise bad_request("the first commit line must be the header")
        else:
            operations.append(await _operation(call, key, value))
        if len(operations) > call.limits.max_commit_operations:
            raise HubError(
                413, "PayloadTooLarge", f"more than {call.limits.max_commit_operations} operations"
            )
    if header is None:
        raise bad_request("commit has no header line")
    return header, operations


async def _operation(call: Call, key: str, value: dict) -> tuple[str, str, dict | None]:
    if key == "file":
        op = parse_model(FileOp, value)
        data = _decode(op)
        sha = await run_in_threadpool(call.store.objects.put_bytes, data)
        return "add", valid_path(op.path, 422), C.regular_entry(sha, data)
    if key == "lfsFile":
        op = parse_model(LfsFileOp, value)
        if op.algo != "sha256" or not SHA256_RE.match(op.oid):
            raise bad_request(f"lfsFile {op.path!r}: oid must be a sha256 hex digest")
        size = op.size if op.size is not None else call.store.objects.size(op.oid)
        return "add", valid_path(op.path, 422), C.lfs_entry(op.oid, -1 if size is None else size)
    if key in ("deletedFile", "deletedFolder"):
        op = parse_model(DeleteOp, value)
        path = op.path.rstrip("/") if key == "deletedFolder" else op.path
        return ("delete" if key == "deletedFile" else "delete_folder"), valid_path(path, 422), None
    raise bad_request(f"unknown commit operation {key!r}")


def _decode(op: FileOp) -> bytes:
    if op.encoding == "base64":
        try:
            return base64.b64decode(op.content, validate=True)
        except ValueError:  # binascii.Error, or non-ASCII text
            raise bad_request(f"file {op.path!r}: content is not valid base64") from None
    if op.encoding in ("utf-8", "utf8"):
        return op.content.encode()
    raise bad_request(f"file {op.path!r}: unknown encoding {op.encoding!r}")


async def _ndjson(call: Call):
    """Yield parsed NDJSON lines of the body, within the commit size, line size and time limits."""
    buf, scanned = bytearray(), 0
    deadline = time.monotonic() + call.limits.body_timeout_s
    async for chunk in stream_chunks(call, call.limits.max_commit_bytes):
        if time.monotonic() > deadline:
            raise HubError(408, "RequestTimeout", "commit body not received in time")
        buf += chunk
        while (i := buf.find(b"\n", scanned)) >= 0:
            line, scanned = bytes(buf[:i]), 0
            del buf[: i + 1]
            if line.strip():
                yield _json_line(line)
        scanned = len(buf)
        if len(buf) > call.limits.max_commit_line_bytes:
            raise HubError(
                413,
                "PayloadTooLarge",
                f"a commit line exceeds {call.limits.max_commit_line_bytes} bytes",
            )
    if buf.strip():
        yield _json_line(bytes(buf))


def _json_line(line: bytes):
    return parse_json(line, "a line of the NDJSON commit body")
