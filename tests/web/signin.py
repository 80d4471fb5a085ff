"""Signing in on the web as a browser does: POST /login, then keep the session cookie."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx2


@contextlib.contextmanager
def signed_in(hub, token: str) -> Iterator[httpx2.Client]:
    """A client that signed in with `token` on the web (it holds the session cookie)."""
    with httpx2.Client(base_url=hub.url) as client:
        assert client.post("/login", data={"token": token}).status_code == 303
        yield client
