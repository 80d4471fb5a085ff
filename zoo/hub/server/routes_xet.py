"""Xet storage routes: the Hub's token endpoints and the CAS API that hf_xet speaks.

Flow (as on huggingface.co): `GET /api/{t}/{repo}/xet-write-token/{rev}` gives a short-lived
token scoped to one repo, with the CAS base URL (`<hub>/xet-cas`). hf_xet then sends xorbs
(`POST /v1/xorbs/default/{hash}`, verified against their hash) and a shard describing the files
(`POST /v1/shards`, each file verified, rebuilt and checked against its sha256); the commit that
follows names the files by sha256, exactly as after a git-lfs upload. Downloads: /resolve sends
`X-Xet-Hash` for files that came through Xet, and hf_xet asks `GET /v1/reconstructions/{hash}`
for signed byte ranges of the xorbs. The v2 routes are not served: the client falls back to v1.
"""

from __future__ import annotations

import base64
import binascii
import os
import time

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from zoo.hub.server import xet_format as X
from zoo.hub.server.access import can_write, contributable_repo, readable_repo, writable_repo
from zoo.hub.server.download import BlobResponse, parse_range
from zoo.hub.server.errors import HubError, bad_request, forbidden, storage_full, unauthorized
from zoo.hub.server.http import Call, json_response, parse_uint, read_body, receive_into
from zoo.hub.server.paths import pr_number
from zoo.hub.server.routes_repos import repo_of

CAS_PREFIX = "/xet-cas"
MAX_XORB_BYTES = 96 << 20  # xet-core caps a xorb at 64 MiB of chunks, plus headers and footer
MAX_SHARD_BYTES = 64 << 20


# -- tokens --------------------------------------------------------------------------------------


def _token_message(repo_type: str, repo_id: str, uid: str, scope: str, exp: int) -> str:
    return f"xet-token\n{repo_type}\n{repo_id}\n{uid}\n{scope}\n{exp}"


def issue_token(call: Call, state: dict, scope: str) -> tuple[str, int]:
    """A CAS token for one repo and scope ('read' or 'write'), valid for upload_url_ttl_s."""
    exp = int(time.time()) + call.limits.upload_url_ttl_s
    message = _token_message(state["type"], state["id"], state["uid"], scope, exp)
    repo = base64.urlsafe_b64encode(state["id"].encode()).decode().rstrip("=")
    sig = call.store.auth.sign(message)
    return f"zx1.{state['type']}.{repo}.{state['uid']}.{scope}.{exp}.{sig}", exp


async def xet_token(call: Call):
    """GET /api/{t}/{repo}/xet-{read|write}-token/{rev}: CAS URL, token and expiry.

    Sent both as JSON (hf_xet reads it) and as X-Xet-* headers (huggingface_hub reads those).
    A write token needs write access, except for pull requests: with ?create_pr=1 anyone who
    may contribute (read access, a token that may write) may upload a new PR's files, and on
    refs/pr/N whoever may push to that PR (its author or a writer). The commit that follows is
    checked again by the commit route.
    """
    repo_type, repo_id = repo_of(call)
    kind, revision = call.groups[3], call.groups[4] or ""
    state = await run_in_threadpool(_token_access, call, repo_type, repo_id, kind, revision)
    scope = "write" if call.groups[3] == "write" else "read"
    token, exp = issue_token(call, state, scope)
    cas = f"{call.base_url}{CAS_PREFIX}"
    headers = {
        "X-Xet-Cas-Url": cas,
        "X-Xet-Access-Token": token,
        "X-Xet-Token-Expiration": str(exp),
    }
    return json_response({"casUrl": cas, "accessToken": token, "exp": exp}, headers=headers)


def _token_access(call: Call, repo_type: str, repo_id: str, kind: str, revision: str) -> dict:
    if kind == "read":
        return readable_repo(call, repo_type, repo_id)
    pr = pr_number(revision)
    if not call.query_flag("create_pr") and pr is None:
        return writable_repo(call, repo_type, repo_id)
    state = contributable_repo(call, repo_type, repo_id)
    if pr is not None:
        call.store.discussions.check_push(state, pr, call.user, can_write(call.user, state))
    return state


def _token_repo(call: Call, need: str) -> dict:
    """The repo state a CAS request's bearer token grants `need` on; 401/403 otherwise."""
    header = call.request.headers.get("authorization", "")
    scheme, _, token = header.strip().partition(" ")
    parts = token.strip().split(".")
    if scheme.lower() != "bearer" or len(parts) != 7 or parts[0] != "zx1":
        raise unauthorized("a Xet access token is required (from the xet-*-token endpoints)")
    _, repo_type, repo, uid, scope, exp, sig = parts
    try:
        repo_id = base64.urlsafe_b64decode(repo + "=" * (-len(repo) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized("malformed Xet access token") from None
    expires = parse_uint(exp)
    message = _token_message(repo_type, repo_id, uid, scope, -1 if expires is None else expires)
    if expires is None or not call.store.auth.check_signature(message, sig):
        raise unauthorized("invalid Xet access token")
    if expires < time.time():
        raise unauthorized("Xet access token expired; ask the Hub for a new one")
    if need == "write" and scope != "write":
        raise forbidden("this Xet token is read-only")
    state = call.store.repos.load(repo_type, repo_id)
    if state is None or state["uid"] != uid:
        raise unauthorized("the repository of this Xet token no longer exists")
    return state


def _repo_key(state: dict) -> tuple[str, str, str]:
    return state["type"], state["id"], state["uid"]


def _hash_arg(text: str, what: str) -> str:
    if not X.is_hash_hex(text):
        raise bad_request(f"{what} must be 64 lowercase hex digits")
    return text


# -- uploads -------------------------------------------------------------------------------------


async def post_xorb(call: Call):
    """POST /xet-cas/v1/xorbs/default/{hash}: store a xorb whose chunks hash to {hash}.

    The body streams to a staging file (never whole in memory: the client sends many at once),
    then is verified chunk by chunk and moved into place.
    """
    state = await run_in_threadpool(_token_repo, call, "write")
    xorb = _hash_arg(call.groups[0], "xorb hash")
    staged = call.store.xet.stage()
    try:
        with open(staged, "wb") as out:
            if not await receive_into(call, out, MAX_XORB_BYTES):
                raise storage_full()
        put = call.store.xet.put_staged_xorb
        new = await run_in_threadpool(put, xorb, staged, _repo_key(state))
    except X.XetFormatError as exc:
        raise bad_request(f"xorb refused: {exc}", code="InvalidXorb") from None
    finally:
        staged.unlink(missing_ok=True)
    return json_response({"was_inserted": new})


async def post_shard(call: Call):
    """POST /xet-cas/v1/shards: register the files a shard describes (each one verified)."""
    state = await run_in_threadpool(_token_repo, call, "write")
    data = await read_body(call, MAX_SHARD_BYTES)
    cap = call.limits.max_lfs_bytes
    try:
        new = await run_in_threadpool(call.store.xet.put_shard, data, _repo_key(state), cap)
    except X.XetTooLarge:
        raise HubError(413, "PayloadTooLarge", "object larger than this Hub accepts") from None
    except X.XetFormatError as exc:
        raise bad_request(f"shard refused: {exc}", code="InvalidShard") from None
    return json_response({"result": 1 if new else 0})


async def get_dedup(call: Call):
    """GET /xet-cas/v1/chunks/default-merkledb/{hash}: a shard locating this chunk, or 404.

    Only shards uploaded to the token's own repo answer: no repo learns what another stores.
    """
    state = await run_in_threadpool(_token_repo, call, "read")
    chunk = _hash_arg(call.groups[0], "chunk hash")
    shard = await run_in_threadpool(call.store.xet.dedup_shard, state["uid"], chunk)
    if shard is None:
        raise HubError(404, "ChunkNotFound", f"chunk {chunk} is not known to this repository")
    return Response(shard, media_type="application/octet-stream")


# -- downloads -----------------------------------------------------------------------------------


def _xorb_message(xorb: str, exp: int) -> str:
    return f"xet-xorb\n{xorb}\n{exp}"


def _xorb_url(call: Call, xorb: str) -> str:
    exp = int(time.time()) + call.limits.upload_url_ttl_s
    sig = call.store.auth.sign(_xorb_message(xorb, exp))
    return f"{call.base_url}{CAS_PREFIX}/xorbs/default/{xorb}?exp={exp}&sig={sig}"


def _readable_file(call: Call, name: str) -> dict:
    state = _token_repo(call, "read")
    record = call.store.xet.file_record(name)
    if record is None or record["sha256"] not in state["lfs"]:
        raise HubError(404, "FileNotFound", f"no file {name} in this repository")
    return record


async def get_reconstruction(call: Call):
    """GET /xet-cas/v1/reconstructions/{hash}: the terms of a file (or of a Range of it)."""
    name = _hash_arg(call.groups[0], "file hash")
    record = await run_in_threadpool(_readable_file, call, name)
    span = parse_range(call.request.headers.get("range"), record["size"])
    body = await run_in_threadpool(_reconstruction, call, record, span)
    return json_response(body)


def _reconstruction(call: Call, record: dict, span: tuple[int, int] | None) -> dict:
    start, end = span if span is not None else (0, record["size"] - 1)
    terms, fetch, skip, pos = [], {}, None, 0
    for xorb, first, last, length in record["terms"]:
        if pos + length > start and pos <= end:
            index = call.store.xet.xorb_index(xorb)
            lo, at = first, pos
            while at + index.lengths[lo] <= start:  # drop chunks before the range
                at, lo = at + index.lengths[lo], lo + 1
            skip = start - at if skip is None else skip
            hi, upto = lo, at
            while hi < last and upto <= end:  # keep chunks up to the range's end
                upto, hi = upto + index.lengths[hi], hi + 1
            chunks = {"start": lo, "end": hi}
            terms.append({"hash": xorb, "unpacked_length": upto - at, "range": chunks})
            byte_span = {"start": index.offsets[lo], "end": index.offsets[hi] - 1}
            fetch.setdefault(xorb, []).append(
                {"range": chunks, "url": _xorb_url(call, xorb), "url_range": byte_span}
            )
        pos += length
    return {"offset_into_first_range": skip or 0, "terms": terms, "fetch_info": fetch}


async def get_xorb_range(call: Call):
    """GET /xet-cas/xorbs/default/{hash}?exp&sig: bytes of a xorb through a signed URL."""
    xorb = _hash_arg(call.groups[0], "xorb hash")
    q = call.request.query_params
    exp = parse_uint(q.get("exp", ""))
    if exp is None or exp < time.time():
        raise forbidden("xorb URL expired or malformed; ask for the reconstruction again")
    if not call.store.auth.check_signature(_xorb_message(xorb, exp), q.get("sig", "")):
        raise forbidden("invalid xorb URL signature")
    path = call.store.xet.xorb_path(xorb)
    fd = await run_in_threadpool(os.open, path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        span = parse_range(call.request.headers.get("range"), size)
    except Exception:
        os.close(fd)
        raise
    return BlobResponse(fd, size, span, {}, call.limits.download_chunk_bytes)
