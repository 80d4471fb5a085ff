"""The ASGI application: a Starlette app whose router matches the *raw* request path.

Routing is on the still-percent-encoded path because the Hub protocol puts quoted revisions in
one segment (`refs%2Fpr%2F1`) and quoted folder paths in /tree; Starlette's decoded path would
merge them with the segments around them. Every error, including unknown routes and crashes,
answers with X-Error-Code, X-Error-Message and a JSON {"error": ...} body.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from zoo.errors import is_disk_full
from zoo.hub.server import routes_admin as A
from zoo.hub.server import routes_discussions as D
from zoo.hub.server import routes_files as F
from zoo.hub.server import routes_repos as R
from zoo.hub.server import routes_upload as U
from zoo.hub.server import routes_xet as XR
from zoo.hub.server.errors import HubError, storage_full
from zoo.hub.server.http import Call, Limits, authenticate
from zoo.hub.server.request_id import RequestIdMiddleware, new_request_id
from zoo.hub.server.store import HubStore
from zoo.hub.server.web import routes as W
from zoo.hub.server.web.pages_auth import page_user
from zoo.hub.server.web.render import error_html, wants_html

log = logging.getLogger("zoo.hub.server")

_S = r"([^/]+)"
_T = r"(models|datasets|spaces)"
_REPO = rf"/api/{_T}/{_S}/{_S}"
_GIT = rf"/(?:(datasets)/)?{_S}/([^/]+?)\.git/info/lfs/objects"
_CAS = XR.CAS_PREFIX
_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE"]
# What follows a repo id in /api/{t}/{id}/...: a namespace-less id followed by one of these is
# answered 404 RepoNotFound (routes_admin.no_namespace) rather than "no such endpoint".
_REPO_SUB = (
    "(?:revision|tree|paths-info|preupload|commit|refs|commits|branch|tag|settings|auth-check"
    "|super-squash|lfs-files|discussions|xet-read-token|xet-write-token)"
)

ROUTES: list[tuple[tuple[str, ...], re.Pattern, object]] = [
    (methods, re.compile(pattern), handler)
    for methods, pattern, handler in [
        (("POST",), r"/api/repos/create", R.create_repo),
        (("DELETE",), r"/api/repos/delete", R.delete_repo),
        (("GET",), r"/api/whoami-v2", R.whoami),
        (("POST",), r"/api/validate-yaml", R.validate_yaml),
        (("GET",), rf"/api/{_T}", R.list_repos),
        (("GET",), _REPO, R.repo_info),
        (("GET",), rf"{_REPO}/revision/{_S}", R.repo_info),
        (("GET",), rf"{_REPO}/tree/{_S}(?:/(.*))?", F.tree),
        (("POST",), rf"{_REPO}/paths-info/{_S}", F.paths_info),
        (("POST",), rf"{_REPO}/preupload/{_S}", U.preupload),
        (("POST",), rf"{_REPO}/commit/{_S}", U.commit),
        (("GET",), rf"{_REPO}/refs", R.list_refs),
        (("GET",), rf"{_REPO}/commits/{_S}", R.list_commits),
        (("POST",), rf"{_REPO}/branch/(.+)", R.create_branch),
        (("DELETE",), rf"{_REPO}/branch/(.+)", R.delete_branch),
        (("POST",), rf"{_REPO}/tag/(.+)", R.create_tag),
        (("DELETE",), rf"{_REPO}/tag/(.+)", R.delete_tag),
        (("GET",), rf"{_REPO}/discussions", D.list_discussions),
        (("POST",), rf"{_REPO}/discussions", D.create_discussion),
        (("GET",), rf"{_REPO}/discussions/{_S}", D.discussion_details),
        (("POST",), rf"{_REPO}/discussions/{_S}/comment", D.comment),
        (("POST",), rf"{_REPO}/discussions/{_S}/comment/{_S}/edit", D.edit_comment),
        (("POST",), rf"{_REPO}/discussions/{_S}/comment/{_S}/hide", D.hide_comment),
        (("POST",), rf"{_REPO}/discussions/{_S}/title", D.rename),
        (("POST",), rf"{_REPO}/discussions/{_S}/status", D.change_status),
        (("POST",), rf"{_REPO}/discussions/{_S}/merge", D.merge),
        (("GET", "HEAD"), rf"{_REPO}/xet-(read|write)-token(?:/(.*))?", XR.xet_token),
        (("POST",), rf"{_GIT}/batch", U.lfs_batch),
        (("POST",), rf"{_GIT}/verify", U.lfs_verify),
        (("PUT",), rf"{_GIT}/([0-9a-f]{{64}})/(\d{{1,19}})", U.lfs_put),
        (("GET", "HEAD"), rf"/(?:(datasets)/)?{_S}/{_S}/resolve/{_S}/(.+)", F.resolve),
        (("POST",), rf"{_CAS}/v1/xorbs/default/{_S}", XR.post_xorb),
        (("POST",), rf"{_CAS}/v1/shards", XR.post_shard),
        (("GET",), rf"{_CAS}/v1/chunks/default(?:-merkledb)?/{_S}", XR.get_dedup),
        (("GET",), rf"{_CAS}/v1/reconstructions/{_S}", XR.get_reconstruction),
        (("GET",), rf"{_CAS}/xorbs/default/{_S}", XR.get_xorb_range),
        (("PUT",), rf"{_REPO}/settings", A.update_settings),
        (("POST",), r"/api/repos/move", A.move_repo),
        (("GET",), rf"{_REPO}/auth-check(?:/write)?", A.auth_check),
        (("POST",), rf"{_REPO}/super-squash/{_S}", A.super_squash),
        (("GET",), rf"{_REPO}/lfs-files", A.list_lfs_files),
        (("POST",), rf"{_REPO}/lfs-files/batch", A.delete_lfs_files),
        (tuple(_METHODS), rf"/api/{_T}/{_S}(?:/{_REPO_SUB}(?:/.*)?)?", A.no_namespace),
        (("GET", "HEAD"), rf"/(?:datasets/)?{_S}/resolve/[^/]+/.+", A.no_namespace),
    ]
]


def _header_safe(text: str) -> str:
    line = " ".join(str(text).split())[:1000]
    return line.encode("latin-1", "replace").decode("latin-1")


def error_response(err: HubError) -> JSONResponse:
    """The JSON error response for `err`, with X-Error-Code and X-Error-Message headers."""
    headers = {
        "X-Request-Id": new_request_id(),
        "X-Error-Code": err.code,
        "X-Error-Message": _header_safe(err.message),
        **err.headers,
    }
    return JSONResponse(
        {**err.extra, "error": err.message}, status_code=err.status, headers=headers
    )


# Handlers that stream a request body of unbounded length enforce their own idle timeout
# instead of the per-request deadline.
_STREAMING = {U.lfs_put}
# File downloads also count the web sign-in cookie (reads only, as on huggingface.co).
_COOKIE_READS = {F.resolve}
# CAS routes carry a Xet access token, not a user token, and check it themselves.
_OWN_AUTH = {XR.post_xorb, XR.post_shard, XR.get_dedup, XR.get_reconstruction, XR.get_xorb_range}


_WEB = {handler for _m, _p, handler in W.WEB_ROUTES}


def _route(method: str, raw_path: str):
    allowed = False
    pages = [] if raw_path.startswith("/api/") else W.WEB_ROUTES
    for methods, pattern, handler in ROUTES + pages:
        match = pattern.fullmatch(raw_path)
        if match:
            if method in methods or (method == "HEAD" and "GET" in methods):
                groups = tuple(unquote(g) if g is not None else None for g in match.groups())
                return handler, groups
            allowed = True
    if allowed:
        raise HubError(405, "MethodNotAllowed", f"{method} is not allowed on {raw_path}")
    raise HubError(404, "NotFound", f"no such endpoint: {method} {raw_path}")


async def _on_hub_error(request: Request, exc: Exception):
    if wants_html(request):
        return error_html(request, exc)  # type: ignore[arg-type]
    return error_response(exc)  # type: ignore[arg-type]


async def _on_http_exception(request: Request, exc: Exception):
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", "") or "request refused"
    return error_response(HubError(status, "HttpError", f"{detail}"))


async def _on_crash(request: Request, exc: Exception):
    if is_disk_full(exc):
        log.error("disk full on %s %s", request.method, request.url.path)
        return error_response(storage_full())
    log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    err = HubError(500, "InternalError", f"internal server error: {type(exc).__name__}")
    return error_html(request, err) if wants_html(request) else error_response(err)


async def _within(work, lim: Limits):
    """`work` under the per-request deadline: 504 DeadlineExceeded past it."""
    try:
        return await asyncio.wait_for(work, lim.request_timeout_s)
    except asyncio.TimeoutError:  # an alias of TimeoutError since Python 3.11
        raise HubError(
            504, "DeadlineExceeded", f"request not completed within {lim.request_timeout_s} s"
        ) from None


def create_app(root: Path, **limits) -> Starlette:
    """Build the Hub ASGI app serving `root` (layout created on first use).

    `limits` override fields of http.Limits (body caps, timeouts, page sizes, chunk size).
    """
    store = HubStore(Path(root))
    store.sweep()
    lim = Limits(**limits)

    async def dispatch(request: Request):
        raw = request.scope.get("raw_path")
        raw_path = raw.decode("latin-1") if raw else request.url.path
        method = request.method.upper()
        handler, groups = _route(method, raw_path)
        if handler in _WEB:
            request.state.web = True
            cookie = method in ("GET", "HEAD") or handler in W.COOKIE_POSTS
            user = page_user(request, store, cookie=cookie)
            request.state.user = user
            start = time.perf_counter()
            response = await _within(handler(Call(request, store, lim, groups, user)), lim)
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1e3:.1f}"
            return response
        if handler in _OWN_AUTH:
            user = None
        elif handler in _COOKIE_READS and method in ("GET", "HEAD"):
            user = page_user(request, store)  # a signed-in browser's download link
        else:
            user = authenticate(request, store)
        call = Call(request, store, lim, groups, user)
        if handler in _STREAMING:
            return await handler(call)
        return await _within(handler(call), lim)

    app = Starlette(
        routes=[Route("/{path:path}", dispatch, methods=_METHODS)],
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers={
            HubError: _on_hub_error,
            HTTPException: _on_http_exception,
            Exception: _on_crash,
        },
    )
    app.state.store, app.state.limits = store, lim
    return app
