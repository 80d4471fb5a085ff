"""How /raw/ serves user content in the Hub's origin: typed so that nothing in it can run.

Images are served as images (what a card's <img> needs); everything else is text/plain when it
reads as UTF-8 and application/octet-stream otherwise, never text/html. Every raw response also
carries `X-Content-Type-Options: nosniff` and a sandboxing CSP, so even an SVG opened directly
runs no script and reaches nothing (GitHub's raw files do the same).
"""

from __future__ import annotations

from urllib.parse import quote

_IMAGES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
RAW_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"


def content_type(path: str, sample: bytes) -> str:
    """The served type of a file, from its suffix (images) or its first bytes (text or not)."""
    suffix = path[path.rfind(".") :].lower() if "." in path.rsplit("/", 1)[-1] else ""
    if suffix in _IMAGES:
        return _IMAGES[suffix]
    if b"\0" in sample:
        return "application/octet-stream"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # not just a character cut at the sample's end
            return "application/octet-stream"
    return "text/plain; charset=utf-8"


def raw_headers(path: str, sample: bytes) -> dict[str, str]:
    """The headers of a raw file response."""
    name = path.rsplit("/", 1)[-1]
    return {
        "Content-Type": content_type(path, sample),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": RAW_CSP,
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}",
        "Cache-Control": "no-cache",
    }
