"""Card markdown -> HTML that is safe to show in the Hub's origin.

markdown-it-py renders CommonMark with GFM tables and strikethrough (raw HTML allowed, as on the
Hub); nh3 then keeps only an allow-list of tags and attributes, drops every script, event handler
and `javascript:` URL, and rewrites relative links and images to the repo's own pages. A
```mermaid block becomes `<pre class="mermaid">` (its text escaped) for mermaid to draw.
"""

from __future__ import annotations

import html
import posixpath
import re
from urllib.parse import quote, unquote, urlsplit

import nh3
from markdown_it import MarkdownIt

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre",
    "s", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "ul",
}  # fmt: skip
_ATTRS = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan"},
    "pre": {"class"},
    "code": {"class"},
    "ol": {"start"},
}
_SCHEMES = {"http", "https", "mailto"}
# The sanitiser's time grows with the square of the tag nesting (100k nested <div>: 27 s), so
# markup nested deeper than this is shown as text; a card past MAX_CHARS is not rendered at all.
MAX_DEPTH = 200
MAX_CHARS = 160_000
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)[^>]*?(/?)>")
_VOID = {"br", "hr", "img", "input", "meta", "link", "wbr", "area", "col", "source"}


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """True when the raw HTML in `text` nests tags deeper than `limit` (a cheap, tolerant count)."""
    depth = 0
    for close, name, self_closing in _TAG.findall(text):
        if name.lower() in _VOID or self_closing:
            continue
        depth = max(depth - 1, 0) if close else depth + 1
        if depth > limit:
            return True
    return False


def _fence(md: MarkdownIt):
    default = md.renderer.rules["fence"]

    def render(_renderer, tokens, idx, options, env):
        token = tokens[idx]
        if token.info.strip().lower() == "mermaid":
            return f'<pre class="mermaid">{html.escape(token.content)}</pre>\n'
        return default(tokens, idx, options, env)

    return render


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.add_render_rule("fence", _fence(md))
    return md


_MD = _parser()


def _in_repo(path: str) -> str | None:
    """A relative URL path (percent-decoded) as a path inside the repo, or None if it leaves it."""
    path = posixpath.normpath(unquote(path))
    if path.startswith(("..", "/")) or path == ".":
        return None
    return path


def _remote(value: str) -> bool:
    """True for a URL that names another host: a scheme, '//host', or '/\\host' (read as '//')."""
    v = value.strip().replace("\\", "/")
    url = urlsplit(v)
    return bool(url.scheme or url.netloc or v.startswith("//"))


def _url_filter(links: dict[str, str]):
    """nh3's attribute filter: relative hrefs -> blob pages, relative images -> raw files,
    images from other hosts dropped (an air-gapped Hub cannot fetch them; CSP would block them)."""

    def keep(tag: str, attr: str, value: str) -> str | None:
        if attr == "class":
            ok = value == "mermaid" or (value.startswith("language-") and value[9:].isalnum())
            return value if ok else None
        if attr not in ("href", "src"):
            return value
        if any(ch.isspace() or ord(ch) < 32 for ch in value):
            return None
        if _remote(value):
            return None if tag == "img" else value
        if value.startswith(("#", "/")):
            return value
        url = urlsplit(value)
        path = _in_repo(url.path)
        if path is None:
            return None
        kind = "raw" if tag == "img" else "blob"
        tail = (f"?{url.query}" if url.query else "") + (f"#{url.fragment}" if url.fragment else "")
        return f"{links['repo']}/{kind}/{links['rev']}/{quote(path)}{tail}"

    return keep


def render_markdown(text: str, repo_url: str, rev: str, max_chars: int = MAX_CHARS) -> str:
    """Sanitised HTML of card markdown; relative links resolve inside `repo_url` at `rev`.

    Text past `max_chars` is not rendered (a notice instead); markup nested too deep is shown as
    text. Either way the time spent stays bounded whatever the repo holds."""
    if len(text) > max_chars:
        return f'<p class="empty">Too long to render here ({len(text):,} characters).</p>'
    if too_deep(text):
        return f'<pre class="text"><code>{html.escape(text)}</code></pre>'
    raw = _MD.render(text)
    return nh3.clean(
        raw,
        tags=_TAGS,
        attributes=_ATTRS,
        url_schemes=_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        attribute_filter=_url_filter({"repo": repo_url, "rev": quote(rev, safe="")}),
        strip_comments=True,
    )
