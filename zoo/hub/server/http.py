"""Request plumbing shared by the routes: the per-request context, bounded body reads, paging.

Bodies are read with a size cap (413 past it, checked against Content-Length first) and a
deadline (408 when a client trickles its body: no slowloris), and parsed into strict pydantic
models (400 naming the bad field).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from zoo.errors import is_disk_full
from zoo.hub.server.auth import User
from zoo.hub.server.errors import (
    INVALID_CREDENTIALS,
    HubError,
    bad_request,
    too_large,
    unauthorized,
)
from zoo.hub.server.store import HubStore

M = TypeVar("M", bound=BaseModel)
# ASCII digits only (str.isdigit() also accepts '²', which int() refuses), and few enough that
# offset + page size stays below sys.maxsize (itertools.islice refuses more).
_UINT = re.compile(r"[0-9]{1,18}")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one server (all overridable through create_app(root, **limits))."""

    max_body_bytes: int = 16 << 20  # JSON bodies: preupload, batch, create...
    max_commit_bytes: int = 1 << 30  # one NDJSON commit (inline files are base64 in it)
    max_commit_line_bytes: int = 64 << 20  # one NDJSON line (one inline file)
    max_commit_operations: int = 100_000
    max_lfs_bytes: int = 1 << 40  # one LFS object (streamed to disk, never held in RAM)
    body_timeout_s: float = 300.0  # deadline to receive a non-streaming body
    request_timeout_s: float = 900.0  # deadline for any request except the streamed LFS PUT
    idle_timeout_s: float = 60.0  # longest silence tolerated inside a streaming upload
    upload_url_ttl_s: int = 3600  # lifetime of a signed LFS upload URL
    list_page_size: int = 1000  # repos per page of /api/models, /api/datasets
    tree_page_size: int = 1000  # entries per page of /tree
    commits_page_size: int = 50  # commits per page of /commits
    download_chunk_bytes: int = 4 << 20  # read size when streaming a file out
    keep_alive_s: int = 5  # uvicorn keep-alive timeout (used by run.py)


class Strict(BaseModel):
    """Base of request bodies: strict types, immutable, unknown protocol keys ignored.

    Unknown keys are ignored rather than refused because the official client adds fields
    across versions (`region`, `resourceGroupId`, ...), and refusing them would break it.
    """

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


@dataclass
class Call:
    """One request: the raw request, the store, the limits, the URL captures and the caller."""

    request: Request
    store: HubStore
    limits: Limits
    groups: tuple[str, ...]
    user: User | None = field(default=None)

    @property
    def base_url(self) -> str:
        """The server's URL as the client reached it, without a trailing slash."""
        return str(self.request.base_url).rstrip("/")

    @property
    def raw_path(self) -> str:
        """The request path as sent (still percent-encoded: `refs%2Fpr%2F1` stays one segment)."""
        raw = self.request.scope.get("raw_path")
        return raw.decode("latin-1") if raw else self.request.url.path

    def query_flag(self, name: str) -> bool:
        """True when query parameter `name` is 1/true/True (the client sends Python bools)."""
        return self.request.query_params.get(name, "").lower() in ("1", "true", "yes")


def authenticate(request: Request, store: HubStore) -> User | None:
    """Return the user of `Authorization: Bearer <token>`; None if anonymous, 401 if unknown."""
    header = request.headers.get("authorization", "")
    if not header.strip():
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized(INVALID_CREDENTIALS)
    user = store.auth.authenticate(token.strip())
    if user is None:
        raise unauthorized(INVALID_CREDENTIALS)
    return user


def parse_uint(text: str) -> int | None:
    """Return `text` as a non-negative integer of at most 18 ASCII digits, or None."""
    return int(text) if _UINT.fullmatch(text) else None


def _declared_length(request: Request, cap: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None:
        if parse_uint(declared) is None:
            raise bad_request("invalid Content-Length header")
        if int(declared) > cap:
            raise too_large(f"request body of {declared} bytes exceeds the limit of {cap} bytes")


async def read_body(call: Call, cap: int | None = None) -> bytes:
    """Read the whole request body, at most `cap` bytes (413), within the body deadline (408)."""
    cap = call.limits.max_body_bytes if cap is None else cap
    _declared_length(call.request, cap)
    chunks, total = [], 0

    async def _read() -> None:
        nonlocal total
        async for chunk in call.request.stream():
            total += len(chunk)
            if total > cap:
                raise too_large(f"request body exceeds the limit of {cap} bytes")
            chunks.append(chunk)

    try:
        await asyncio.wait_for(_read(), call.limits.body_timeout_s)
    except asyncio.TimeoutError:  # an alias of TimeoutError since Python 3.11
        raise HubError(408, "RequestTimeout", "request body not received in time") from None
    return b"".join(chunks)


async def stream_chunks(call: Call, cap: int) -> AsyncIterator[bytes]:
    """Yield the body's chunks; fail past `cap` bytes (413) or after idle_timeout_s of silence."""
    _declared_length(call.request, cap)
    stream, total = call.request.stream().__aiter__(), 0
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), call.limits.idle_timeout_s)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:  # an alias of TimeoutError since Python 3.11
            raise HubError(408, "RequestTimeout", "upload stalled: no data received") from None
        total += len(chunk)
        if total > cap:
            raise too_large(f"request body exceeds the limit of {cap} bytes")
        if chunk:
            yield chunk


_WRITE_BATCH = 8 << 20


async def receive_into(call: Call, writer, cap: int) -> bool:
    """Stream the body (at most `cap` bytes) into `writer.write`, off the event loop in 8 MiB
    steps; False when the disk filled (the rest is still read, so the client hears the 507
    instead of a connection reset)."""
    pending: list[bytes] = []
    pending_bytes, full = 0, False
    async for chunk in stream_chunks(call, cap):
        if full:
            continue
        pending.append(chunk)
        pending_bytes += len(chunk)
        if pending_bytes >= _WRITE_BATCH:
            full = not await _write(writer, b"".join(pending))
            pending, pending_bytes = [], 0
    return not full and await _write(writer, b"".join(pending))


async def _write(writer, data: bytes) -> bool:
    try:
        await run_in_threadpool(writer.write, data)
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        return False
    return True


async def read_model(call: Call, model: type[M]) -> M:
    """Read a JSON body into `model`; 400 naming the first bad field."""
    return parse_model(model, parse_json(await read_body(call) or b"{}"))


def parse_json(raw: bytes, what: str = "request body") -> object:
    """Parse JSON; 400 if it is malformed, nested too deeply, or holds a lone surrogate.

    A lone surrogate (`"\\ud800"`) parses into a str that cannot be encoded as UTF-8, so storing
    or echoing it would fail later, in every response that shows it.
    """
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad_request(f"{what} is not valid JSON") from None
    stack = [data]
    while stack:  # iterative: the nesting json.loads accepts could exhaust Python's stack
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and not item.isascii() and _SURROGATE.search(item):
            raise bad_request(f"{what} holds a lone UTF-16 surrogate: not valid Unicode")
    return data


def parse_model(model: type[M], data: object) -> M:
    """Validate plain data into `model`; 400 with 'field: problem' on failure."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise bad_request(f"invalid request body: {where}: {first['msg']}") from None


def json_response(data: object, status: int = 200, headers: dict | None = None) -> JSONResponse:
    """A JSON response (the client parses bodies even on success paths it does not check)."""
    return JSONResponse(data, status_code=status, headers=headers)


def page_response(call: Call, page: list, next_offset: int | None, cursor: str = "cursor"):
    """Return `page` as JSON, with an RFC 5988 `Link: <next>; rel="next"` when next_offset is set.

    The next URL repeats every query parameter of this request, with `cursor` set to next_offset.
    """
    headers = {}
    if next_offset is not None:
        params = [(k, v) for k, v in call.request.query_params.multi_items() if k != cursor]
        params.append((cursor, str(next_offset)))
        url = f"{call.base_url}{call.raw_path}?{urlencode(params)}"
        headers["Link"] = f'<{url}>; rel="next"'
    return json_response(page, headers=headers)


def offset_param(call: Call, name: str = "cursor") -> int:
    """Read a non-negative integer paging offset from the query (0 if absent); 400 if malformed."""
    raw = call.request.query_params.get(name, "0")
    value = parse_uint(raw)
    if value is None:
        raise bad_request(
            f"invalid {name!r} query parameter {raw[:50]!r}: expected 1 to 18 digits (0-9)"
        )
    return value
