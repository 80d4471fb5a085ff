"""Signing in on the web: a token, checked once, turned into a signed session (never the token
itself) kept in an HttpOnly, SameSite=Strict cookie named after the Hub's port (cookies are not
kept apart by port: two Hubs on one host must not share or overwrite one).

The session counts only for reads: the web pages, file downloads (resolve) and signing out. Every
write to the API still needs an `Authorization` header, so a page elsewhere can never make a
visitor's browser change the Hub.
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

COOKIE = "zoo_session"
_FORM_MAX = 4096
_MAX_AGE_S = 30 * 24 * 3600


def page_user(request: Request, store: HubStore, cookie: bool = True) -> User | None:
    """The visitor: the Authorization header's user, else the sign-in cookie's (None if stale).

    cookie=False ignores the cookie (a POST other than signing out)."""
    user = authenticate(request, store)
    session = request.cookies.get(cookie_name(request)) if cookie else None
    if user is None and session:
        user = store.auth.session_user(session)
    return user


def cookie_name(request: Request) -> str:
    """The session cookie of the Hub the request reached: one name per port."""
    return f"{COOKIE}_{request.url.port or (443 if request.url.scheme == 'https' else 80)}"


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
    session = call.store.auth.new_session(token, _MAX_AGE_S) if token else None
    if session is None:
        return page(call, "login.html", status=401, next=target, error="unknown token")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        cookie_name(call.request),
        session,
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
    response.delete_cookie(cookie_name(call.request), path="/", httponly=True, samesite="strict")
    return response
