"""Templates and responses: one Jinja2 environment, the security headers every page carries."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from zoo import __version__
from zoo.hub.server.errors import HubError
from zoo.hub.server.http import Call
from zoo.hub.server.paths import is_valid_repo_id

HERE = Path(__file__).parent
STATIC = HERE / "static"
MERMAID = STATIC / "vendor" / "mermaid" / "mermaid.esm.min.mjs"

# Scripts only from the Hub itself; mermaid writes inline <style> into its SVGs, hence
# 'unsafe-inline' for styles (never for scripts). Card images come from the Hub itself (the
# sanitiser drops others; data: stays allowed for mermaid's and the browser's own images).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _filesize(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


_env.filters["filesize"] = _filesize
_env.filters["urlpath"] = lambda s: quote(str(s), safe="/")  # a file path: its slashes stay
_env.filters["urlseg"] = lambda s: quote(str(s), safe="")  # one segment: a revision, a name
_env.filters["short"] = lambda sha: str(sha)[:7]
_env.globals["has_mermaid"] = MERMAID.is_file
_env.globals["zoo_version"] = __version__


def repo_url(repo_type: str, repo_id: str) -> str:
    """The page of a repo: /{id} for models, /datasets/{id} for datasets (the Hub's shapes)."""
    return f"/{repo_id}" if repo_type == "model" else f"/datasets/{repo_id}"


_env.globals["repo_url"] = repo_url
_env.globals["is_repo_id"] = is_valid_repo_id


def page_number(call: Call) -> int:
    """The ?p= page of a paged list (0-based; anything but a small number is the first page)."""
    text = call.request.query_params.get("p", "0")
    return int(text) if text.isdigit() and len(text) < 7 else 0


def render(template: str, **context) -> str:
    """The template rendered with `context` (autoescaped)."""
    return _env.get_template(template).render(**context)


def page(call: Call, template: str, status: int = 200, **context) -> HTMLResponse:
    """An HTML page with the security headers; `user` (the signed-in visitor) is always passed."""
    body = render(
        template, user=call.user, path=call.request.url.path, base_url=call.base_url, **context
    )
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


def wants_html(request: Request) -> bool:
    """True for a web page's route, or a browser (HTML accepted) asking for no API path."""
    if getattr(request.state, "web", False):
        return True
    path = request.url.path
    accept = request.headers.get("accept", "")
    return not path.startswith("/api/") and "text/html" in accept


def error_html(request: Request, err: HubError) -> Response:
    """A HubError as a browser sees it: a redirect stays one, anything else an HTML page (with
    the visitor the page's route found, so the header and "Sign in" stay right)."""
    if 300 <= err.status < 400 and "Location" in err.headers:
        return RedirectResponse(err.headers["Location"], status_code=err.status)
    user = getattr(request.state, "user", None)
    body = render("error.html", user=user, path=request.url.path, status=err.status,
                  code=err.code, message=err.message)  # fmt: skip
    headers = {**PAGE_HEADERS, "X-Error-Code": err.code}
    return HTMLResponse(body, status_code=err.status, headers=headers)
