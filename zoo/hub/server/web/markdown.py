"""Card markdown -> HTML that is safe to show in the Hub's origin.

markdown-it-py renders CommonMark with GFM tables and strikethrough (raw HTML allowed, as on the
Hub); nh3 then keeps only an allow-list of tags and attributes, drops every script, event handler
and `javascript:` URL, and rewrites relative links and images to the repo's own pages. A
```mermaid block becomes `<pre class="mermaid">` (its text escaped) for mermaid to draw.
"""

from __future__ import annotations

import html
import posixpath
from urllib.parse import quote, urlsplit

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


def _in_repo(value: str, base: str) -> str | None:
    """A relative URL as a path inside the repo, or None if it leaves the repo."""
    url = urlsplit(value)
    path = posixpath.normpath(posixpath.join(base, url.path))
    if path.startswith("..") or path.startswith("/") or path == ".":
        return None
    return path


def _url_filter(links: dict[str, str]):
    """nh3's attribute filter: relative hrefs -> blob pages, relative images -> raw files,
    images from other hosts dropped (an air-gapped Hub cannot fetch them; CSP would block them)."""

    def keep(tag: str, attr: str, value: str) -> str | None:
        if attr == "class":
            ok = value == "mermaid" or (value.startswith("language-") and value[9:].isalnum())
            return value if ok else None
        if attr not in ("href", "src"):
            return value
        url = urlsplit(value)
        if url.scheme or url.netloc:
            return None if tag == "img" else value
        if value.startswith("#") or value.startswith("/"):
            return value
        path = _in_repo(value, "")
        if path is None:
            return None
        kind = "raw" if tag == "img" else "blob"
        frag = f"#{url.fragment}" if url.fragment else ""
        return f"{links['repo']}/{kind}/{links['rev']}/{quote(path)}{frag}"

    return keep


def render_markdown(text: str, repo_url: str, rev: str) -> str:
    """Sanitised HTML of card markdown; relative links resolve inside `repo_url` at `rev`."""
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
