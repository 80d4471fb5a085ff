"""/static/: the web face's own stylesheet and scripts and the vendored mermaid, nothing else."""

from __future__ import annotations

from starlette.responses import FileResponse

from zoo.hub.server.errors import HubError
from zoo.hub.server.http import Call
from zoo.hub.server.web.render import STATIC

_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


async def static_file(call: Call):
    """GET /static/{path}: a file under the package's static folder, by suffix only."""
    path = (STATIC / call.groups[0]).resolve()
    suffix = path.suffix.lower()
    if STATIC.resolve() not in path.parents or suffix not in _TYPES or not path.is_file():
        raise HubError(404, "NotFound", f"no such static file: {call.groups[0]}")
    return FileResponse(
        path,
        media_type=_TYPES[suffix],
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


async def favicon(call: Call):
    """GET /favicon.ico: what browsers ask for on their own (the SVG icon)."""
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})  # fmt: skip
