"""`X-Request-Id` on every response, as on the Hub (the client quotes it in its error messages).

The middleware adds a fresh id to each response that has none; error responses built outside it
(a crash answered by the outermost handler) get theirs from app.error_response.
"""

from __future__ import annotations

import secrets

HEADER = b"x-request-id"


def new_request_id() -> str:
    """A random request id: "Root=1-" and 24 hex digits, the shape the Hub's ids have."""
    return f"Root=1-{secrets.token_hex(12)}"


class RequestIdMiddleware:
    """Pure ASGI middleware: add `X-Request-Id` to an HTTP response that lacks one."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k.lower() == HEADER for k, _ in headers):
                    headers.append((HEADER, new_request_id().encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)
