"""Signing in on the web: a token, checked once, kept in an HttpOnly, SameSite=Strict cookie.

The cookie counts only for the web pages (GET) and for signing out; the API still wants an
`Authorization` header, so a page elsewhere can never make a visitor's browser write to the Hub.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse

from zoo.hub.server.auth import User
from zoo.hub.server.errors import forbidden
from zoo.hub.server.http import Call, authenticate, read_body
from zoo.hub.server.store import HubStore
from zoo.hub.server.web.render import page

COOKIE = "zoo_token"
_FORM_MAX = 4096
_MAX_AGE_S = 30 * 24 * 3600


def page_user(request: Request, store: HubStore, cookie: bool = True) -> User | None:
    """The visitor: the Authorization header's user, else the sign-in cookie's (None if stale).

    cookie=False ignores the cookie (a POST other than signing out)."""
    user = authenticate(request, store)
    if user is None and cookie and request.cookies.get(COOKIE):
        user = store.auth.authenticate(request.cookies[COOKIE])
    return user


def _next(value: str | None) -> str:
    """Where to go after signing in: a path on this Hub only (never '//host' or a URL)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


async def login_form(call: Call):
    """GET /login: the sign-in form."""
    return page(call, "login.html", next=_next(call.request.query_params.get("next")), error=None)


def _check_origin(call: Call) -> None:
    """Refuse a sign-in form posted from another site (login CSRF): an Origin of another host."""
    origin = call.request.headers.get("origin")
    if origin is not None and origin.rstrip("/") != call.base_url:
        raise forbidden(f"a sign-in form from {origin[:100]} is not accepted here")


async def login(call: Call):
    """POST /login: check the token, set the cookie, go back to where the visitor was."""
    _check_origin(call)
    form = parse_qs((await read_body(call, _FORM_MAX)).decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    target = _next((form.get("next") or [None])[0])
    user = call.store.auth.authenticate(token) if token else None
    if user is None:
        return page(call, "login.html", status=401, next=target, error="unknown token")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=call.request.url.scheme == "https",
        path="/",
    )
    return response


async def logout(call: Call):
    """POST /logout: forget the cookie."""
    _check_origin(call)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
