"""The web face's renderers as pure functions: card markdown -> sanitised HTML, raw file types,
folder listings, safetensors tensor tables, sign-in redirects."""

from __future__ import annotations

import json
import struct
from html.parser import HTMLParser

import pytest

from zoo.hub.server.cards import card_body
from zoo.hub.server.objects import ObjectStore
from zoo.hub.server.web import files as F
from zoo.hub.server.web.markdown import render_markdown
from zoo.hub.server.web.pages_auth import _next
from zoo.hub.server.web.raw import content_type, raw_headers

XSS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[click](javascript:alert(1))",
    '<a href="JaVaScRiPt:alert(1)">j</a>',
    '<a href="&#106;avascript:alert(1)">entity</a>',
    "<svg><script>alert(1)</script><circle onload=alert(1)></svg>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '<div style="background:url(javascript:alert(1))" onclick="alert(1)">x</div>',
    "[a](<javascript:alert(1)>)",
    '<details open ontoggle="alert(1)">t</details>',
    '![x](x" onerror="alert(1))',
    '<form action="javascript:alert(1)"><button>go</button></form>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
]


class _Markup(HTMLParser):
    """Every (tag, attributes) the browser would build from the HTML."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


_ACTIVE_TAGS = {"script", "iframe", "svg", "math", "form", "style", "object", "embed", "button"}


@pytest.mark.parametrize("payload", XSS)
def test_no_payload_survives(payload):
    for tag, attrs in _Markup(render_markdown(payload, "/org/m", "main")).found:
        assert tag not in _ACTIVE_TAGS, (payload, tag)
        for name, value in attrs.items():
            assert not name.startswith("on") and name != "style", (payload, name)
            if name in ("href", "src"):
                assert value.startswith(("/", "#", "http://", "https://")), (payload, value)


def test_gfm_tables_code_and_strikethrough():
    out = render_markdown(
        "| a | b |\n|---|--:|\n| 1 | 2 |\n\n~~old~~\n\n```python\nx = '<b>'\n```", "/o/m", "main"
    )
    assert "<table>" in out and "<th>a</th>" in out and "<td" in out
    assert "<del>old</del>" in out or "<s>old</s>" in out
    assert '<code class="language-python">' in out and "&lt;b&gt;" in out


def test_relative_links_and_images_stay_in_the_repo():
    out = render_markdown(
        "![plot](eval/plot.png) [f](sub/a.txt#L2) [up](../../x) [h](#sec)", "/o/m", "v1"
    )
    assert 'src="/o/m/raw/v1/eval/plot.png"' in out
    assert 'href="/o/m/blob/v1/sub/a.txt#L2"' in out
    assert "../" not in out and 'href="#sec"' in out
    assert 'rel="noopener noreferrer nofollow"' in out


def test_external_images_are_dropped_external_links_kept():
    out = render_markdown(
        "![t](http://evil.example/t.png) [doc](https://example.org/doc)", "/o/m", "main"
    )
    assert "evil.example" not in out
    assert 'href="https://example.org/doc"' in out


def test_revision_is_quoted_in_links():
    out = render_markdown("![p](p.png)", "/o/m", "refs/pr/1")
    assert 'src="/o/m/raw/refs%2Fpr%2F1/p.png"' in out


def test_mermaid_block_is_escaped_text_for_mermaid():
    out = render_markdown(
        '```mermaid\ngraph BT\n  n0["a<img src=x onerror=alert(1)>"] --> n1\n```', "/o/m", "main"
    )
    assert out.startswith('<pre class="mermaid">graph BT')
    assert "<img" not in out and "&lt;img" in out


def test_classes_other_than_mermaid_and_language_are_dropped():
    out = render_markdown(
        '<pre class="evil x">a</pre><code class="language-py">b</code>', "/o/m", "m"
    )
    assert 'class="evil' not in out and 'class="language-py"' in out


def test_card_body_drops_front_matter():
    assert card_body("---\nlicense: mit\n---\n# Title\n") == "# Title\n"
    assert card_body("# No front matter\n") == "# No front matter\n"


@pytest.mark.parametrize(
    ("path", "sample", "want"),
    [
        ("README.md", b"# hi", "text/plain; charset=utf-8"),
        ("evil.html", b"<script>alert(1)</script>", "text/plain; charset=utf-8"),
        ("page.htm", b"<html>", "text/plain; charset=utf-8"),
        ("model.safetensors", b"\x08\0\0\0\0\0\0\0{}", "application/octet-stream"),
        ("eval/plot.png", b"\x89PNG", "image/png"),
        ("x.svg", b"<svg onload=alert(1)>", "image/svg+xml"),
        ("weird", b"\xff\xfe\xfa garbage \xff", "application/octet-stream"),
    ],
)
def test_raw_content_types(path, sample, want):
    assert content_type(path, sample) == want


def test_raw_headers_sandbox_everything():
    h = raw_headers("x.svg", b"<svg/>")
    assert h["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in h["Content-Security-Policy"]
    assert "script-src" not in h["Content-Security-Policy"]  # default-src 'none' covers it


def _entry(size: int = 1, lfs: bool = False, sha: str = "0" * 64) -> dict:
    return {"size": size, "lfs": lfs, "sha256": sha, "oid": "0" * 40}


def test_listing_folders_first_and_missing_folder():
    tree = {"b.txt": _entry(), "a/x.txt": _entry(), "a/y/z.txt": _entry(), "c.bin": _entry(9, True)}
    root = F.listing(tree, "")
    assert [(e.name, e.folder) for e in root] == [("a", True), ("b.txt", False), ("c.bin", False)]
    assert [e.path for e in F.listing(tree, "a")] == ["a/y", "a/x.txt"]
    assert F.listing(tree, "nope") is None
    assert F.crumbs("a/y/z.txt") == [("a", "a"), ("y", "a/y"), ("z.txt", "a/y/z.txt")]


def _store_blob(tmp_path, data: bytes) -> tuple[ObjectStore, dict]:
    store = ObjectStore(tmp_path)
    sha = store.put_bytes(data)
    return store, _entry(len(data), True, sha)


def test_tensor_table_reads_the_header_only(tmp_path):
    header = {
        "__metadata__": {"format": "pt"},
        "embeddings.weight": {"dtype": "F32", "shape": [30, 8], "data_offsets": [0, 960]},
        "bias": {"dtype": "BF16", "shape": [8], "data_offsets": [960, 976]},
    }
    raw = json.dumps(header).encode()
    store, entry = _store_blob(tmp_path, struct.pack("<Q", len(raw)) + raw + b"\0" * 976)
    rows = F.tensor_table(store, entry)
    assert [(r.name, r.dtype, r.shape, r.parameters) for r in rows] == [
        ("embeddings.weight", "F32", "30×8", 240),
        ("bias", "BF16", "8", 8),
    ]


def test_tensor_table_of_a_non_safetensors_file_is_empty(tmp_path):
    store, entry = _store_blob(tmp_path, b"not a safetensors file at all")
    assert F.tensor_table(store, entry) == []


def test_text_of(tmp_path):
    store, entry = _store_blob(tmp_path, "héllo\n".encode())
    assert F.text_of(store, entry) == "héllo\n"
    store, entry = _store_blob(tmp_path, b"\0\1\2binary")
    assert F.text_of(store, entry) is None


@pytest.mark.parametrize(
    ("value", "want"),
    [("/org/m", "/org/m"), ("//evil.example/x", "/"), ("https://evil.example", "/"),
     ("/\\evil.example", "/"), (None, "/"), ("", "/")],
)  # fmt: skip
def test_sign_in_returns_only_to_this_hub(value, want):
    assert _next(value) == want


def test_backslash_rooted_and_control_char_urls_are_remote():
    out = render_markdown(
        '<img src="/\\evil.example/x.png"> <img src="java\tscript:alert(1)">', "/o/m", "main"
    )
    assert "evil.example" not in out and "script:" not in out


def test_relative_paths_are_decoded_once_then_encoded_once():
    out = render_markdown(
        "![p](my%20plot.png) ![u](bilder/ü.png) [q](a.txt?x=1#L2) [e](%2E%2E/%2E%2E/x)",
        "/o/m",
        "main",
    )
    assert 'src="/o/m/raw/main/my%20plot.png"' in out
    assert 'src="/o/m/raw/main/bilder/%C3%BC.png"' in out
    assert 'href="/o/m/blob/main/a.txt?x=1#L2"' in out
    assert '<a rel="noopener noreferrer nofollow">e</a>' in out  # an encoded ../ leaves: no href


def test_deep_nesting_is_shown_as_text_and_long_cards_are_not_rendered():
    from zoo.hub.server.web.markdown import MAX_CHARS, too_deep

    assert too_deep("<div>" * 201) and not too_deep("<div></div>" * 5000)
    assert not too_deep("<br>" * 5000) and not too_deep("<p/>" * 5000)
    out = render_markdown("<div>" * 1000, "/o/m", "main")
    assert out.startswith('<pre class="text"><code>&lt;div&gt;')
    assert "Too long to render" in render_markdown("x" * (MAX_CHARS + 1), "/o/m", "main")
