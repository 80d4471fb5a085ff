"""Fuzz every route of the Hub server: no request may get a 5xx, crash the app or leave it sick.

The in-process ASGI app is driven with the scope uvicorn's h11 protocol builds (raw_path without
the query, path = unquote(raw_path), lower-cased header names, the body in chunks), so the code
under test is exactly what `zoo hub serve` runs, minus the sockets;
test_server_regressions.py replays the bugs this fuzzing found over a real uvicorn server. The
route table is app.ROUTES (Starlette holds one catch-all route that dispatches on it): a new route
is fuzzed at once by a strategy generated from its regex, and test_every_route_has_a_strategy
fails until it gets a targeted one.

Properties, per request: status < 500, no exception escapes the app, an error carries
X-Error-Code, X-Error-Message and a JSON {"error": ...} body; after every request that may write,
the server still shows the fuzzed repo with its card and serves a pinned file; at the end every
repo lists with its card, and no staging file or file descriptor leaked. ZOO_FUZZ_EXAMPLES=N
fuzzes deeper (default 80 per test).
Strategies: fuzz_strategies.py.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import anyio
import anyio.from_thread
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from tests.hub import xet_build
from tests.hub.fuzz_strategies import (
    GARBAGE_BODIES,
    HEAD,
    LFS_DATA,
    METHODS,
    TARGETS,
    add_file,
    cached,
    chunked,
    commit_body,
    commit_lines,
    draw_request,
    dumps,
    plans,
    wire_target,
    yaml_cards,
)
from zoo.hub.server import HubStore
from zoo.hub.server import xet_format as X
from zoo.hub.server.app import ROUTES, create_app

EXAMPLES = int(os.environ.get("ZOO_FUZZ_EXAMPLES", "80"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
# Small limits, so that caps, paging and 413s are reached with small bodies.
LIMITS = dict(
    max_body_bytes=64 << 10,
    max_commit_bytes=256 << 10,
    max_commit_line_bytes=64 << 10,
    max_commit_operations=20,
    body_timeout_s=5.0,
    list_page_size=1000,  # assert_healthy lists every repo in one page; `limit` fuzzes paging
    tree_page_size=3,
    commits_page_size=2,
)


# -- driving the ASGI app as uvicorn does ------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    crash: BaseException | None = None

    def json(self):
        return json.loads(self.body)


async def _asgi(app, method: str, target: bytes, headers: list, chunks: list[bytes]) -> Reply:
    raw_path, _, query = target.partition(b"?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": method,
        "root_path": "",
        "path": unquote(raw_path.decode("ascii")),
        "raw_path": raw_path,
        "query_string": query,
        "headers": headers,
        "state": {},
    }
    pending, done = list(chunks), anyio.Event()
    start: dict = {}
    body: list[bytes] = []

    async def receive():
        if pending:
            return {"type": "http.request", "body": pending.pop(0), "more_body": bool(pending)}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    crash = None
    with anyio.fail_after(60):  # a hang is a failure too
        try:
            await app(scope, receive, send)
        except Exception as exc:  # Starlette re-raises after sending its 500
            crash = exc
    hdrs = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start.get("headers", [])}
    return Reply(start.get("status", 500), hdrs, b"".join(body), crash)


class Ctx:
    """The app under test, its blocking portal, and the fixture repos, tokens and commits."""

    def __init__(self, app, portal, root: Path, tokens: dict[str, str]):
        self.app, self.portal, self.root, self.tokens = app, portal, root, tokens
        self.repos: dict[str, str] = {}
        self.shas: list[str] = []
        self.lfs: dict = {}
        self.comments: list[str] = []  # ids of the opening comments of the fixture's discussions
        self.xet: dict = {}
        self.cache: dict = {}  # strategies built once per module

    def __repr__(self) -> str:  # Hypothesis prints the fixture with every failing example
        return f"Ctx({self.root})"

    def call(self, method, path, token=None, body=b"", headers=(), chunks=None, raw=False):
        hdrs = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        if token:
            hdrs.append((b"authorization", f"Bearer {token}".encode()))
        if body and not any(k == b"content-length" for k, _ in hdrs):
            hdrs.append((b"content-length", str(len(body)).encode()))
        target = path if raw else wire_target(path)
        return self.portal.call(_asgi, self.app, method, target, hdrs, chunks or [body])

    def ok(self, method, path, token, payload=None, **kw) -> Reply:
        body = json.dumps(payload).encode() if isinstance(payload, (dict, list)) else payload or b""
        r = self.call(method, path, token, body, **kw)
        assert r.status < 300, (method, path, r.status, r.body)
        return r


CARD = b"---\nlicense: mit\ntags: [fuzz]\n---\n# card\n"


def _seed(ctx: Ctx) -> None:
    alice, bob = ctx.tokens["alice"], ctx.tokens["bob"]
    for token, name, private, kind in [
        (alice, "pub", False, "model"),
        (alice, "priv", True, "model"),
        (alice, "ds", False, "dataset"),
        (bob, "scratch", False, "model"),
    ]:
        body = {"name": name, "private": private, "type": kind}
        ctx.ok("POST", "/api/repos/create", token, body)
    ctx.repos = {"pub": "alice/pub", "priv": "alice/priv", "ds": "alice/ds"}
    ctx.repos["scratch"] = "bob/scratch"  # bob's: the fuzz writes here (bob cannot touch alice's)
    for repo_id, token in (("alice/pub", alice), ("alice/priv", alice), ("bob/scratch", bob)):
        ops = [add_file("README.md", CARD), add_file("dir/a.txt", b"hello"), add_file("b", b"x")]
        r = ctx.ok("POST", f"/api/models/{repo_id}/commit/main", token, commit_body("s", *ops))
        ctx.shas.append(r.json()["commitOid"])
    ctx.ok("POST", "/api/models/alice/pub/branch/dev", alice, {})
    ctx.ok("POST", f"/api/models/alice/pub/tag/{ctx.shas[0]}", alice, {"tag": "v1"})
    ctx.lfs = _upload_lfs(ctx, "bob/scratch", bob, LFS_DATA)
    _seed_discussions(ctx)


def _seed_discussions(ctx: Ctx) -> None:
    """#1 a PR on bob/scratch (by commit), #2 a discussion, #3 an empty PR; one on alice/pub."""
    bob, alice = ctx.tokens["bob"], ctx.tokens["alice"]
    body = commit_body("pr", add_file("dir/pr.txt", b"pr"))
    ctx.ok("POST", "/api/models/bob/scratch/commit/main?create_pr=1", bob, body)
    for repo_id, token, pr in (("bob/scratch", bob, False), ("bob/scratch", bob, True)):
        payload = {"title": "t", "description": "d", "pullRequest": pr}
        ctx.ok("POST", f"/api/models/{repo_id}/discussions", token, payload)
    ctx.ok("POST", "/api/models/alice/pub/discussions", alice, {"title": "t"})
    for repo_id in ("bob/scratch", "alice/pub"):
        r = ctx.ok("GET", f"/api/models/{repo_id}/discussions/1", bob)
        ctx.comments.append(r.json()["events"][0]["id"])
    ctx.xet = _upload_xet(ctx, "bob/scratch", bob)


def _xet_token(ctx: Ctx, repo_id: str, token: str, kind: str) -> str:
    return ctx.ok("GET", f"/api/models/{repo_id}/xet-{kind}-token/main", token).json()[
        "accessToken"
    ]


def _upload_xet(ctx: Ctx, repo_id: str, token: str) -> dict:
    """A xorb and a shard uploaded through the CAS routes, and what the fuzz needs to reach them."""
    write, read = (_xet_token(ctx, repo_id, token, k) for k in ("write", "read"))
    x = xet_build.xorb([b"\0xet" * 500, bytes(range(256)) * 9])
    ctx.ok("POST", f"/xet-cas/v1/xorbs/default/{x.hash}", write, x.data)
    terms = [xet_build.Term(x, 0, 2)]
    shard = xet_build.shard([{"terms": terms}], [x])
    ctx.ok("POST", "/xet-cas/v1/shards", write, shard)
    name, _ = xet_build.file_of(terms)
    plan = ctx.ok("GET", f"/xet-cas/v1/reconstructions/{name}", read).json()
    url = plan["fetch_info"][x.hash][0]["url"]
    chunk = X.hash_hex(x.hashes[0])
    return {
        "write": write,
        "read": read,
        "xorb": x.data,
        "xorb_hash": x.hash,
        "shard": shard,
        "file": name,
        "chunk": chunk,
        "query": url.split("?", 1)[1],
    }


def _upload_lfs(ctx: Ctx, repo_id: str, token: str, data: bytes) -> dict:
    oid = hashlib.sha256(data).hexdigest()
    batch = {"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]}
    r = ctx.ok("POST", f"/{repo_id}.git/info/lfs/objects/batch", token, batch)
    href = r.json()["objects"][0]["actions"]["upload"]["href"]
    path = href.split("://", 1)[1].split("/", 1)[1]
    ctx.ok("PUT", "/" + path, None, data)
    return {"oid": oid, "size": len(data), "query": path.split("?", 1)[1]}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz") / "hub"
    store = HubStore(root)
    tokens = {
        "admin": store.admin_token(),
        "alice": store.add_token("alice", write=True),
        "reader": store.add_token("alice", write=False),
        "bob": store.add_token("bob", write=True),
    }
    with anyio.from_thread.start_blocking_portal() as portal:
        c = Ctx(create_app(root, **LIMITS), portal, root, tokens)
        _seed(c)
        fds = len(os.listdir("/proc/self/fd"))
        yield c
        assert_healthy(c, everything=True)
        assert not list((root / "tmp").iterdir()), "staging files left behind"
        assert len(os.listdir("/proc/self/fd")) <= fds + 5, "file descriptors leaked"


def assert_healthy(ctx: Ctx, everything: bool = False) -> None:
    """The fuzzed repo still shows with its card, a pinned file still downloads; with
    `everything`, every repo still lists with its card. Recreates bob/scratch if it was deleted."""
    if ctx.app.state.store.repos.load("model", "bob/scratch") is None:
        ctx.ok("POST", "/api/repos/create", ctx.tokens["bob"], {"name": "scratch"})
    url = "/api/models?full=1&cardData=1" if everything else "/api/models/bob/scratch"
    r = ctx.call("GET", url, ctx.tokens["admin"])
    assert r.status == 200 and r.crash is None, (url, r.status, r.body[:300])
    r = ctx.call("GET", f"/alice/pub/resolve/{ctx.shas[0]}/dir/a.txt")
    assert r.status == 200 and r.body == b"hello"


def check_reply(r: Reply, method: str, target: bytes) -> None:
    where = f"{method} {target[:300]!r}"
    assert r.crash is None, f"{where}: the app raised {r.crash!r}"
    assert r.status < 500, f"{where} -> {r.status} {r.body[:300]!r}"
    if r.status >= 400:
        assert r.headers.get("x-error-code"), f"{where} -> {r.status} without X-Error-Code"
        assert "x-error-message" in r.headers, f"{where} -> {r.status} without X-Error-Message"
        if method != "HEAD":
            assert isinstance(r.json().get("error"), str), f"{where}: {r.body[:300]!r}"


# -- the tests -----------------------------------------------------------------------------------


def test_every_route_has_a_strategy(ctx):
    """app.ROUTES is the whole table, and each route is reachable through its plan's templates."""
    app_routes = ctx.app.router.routes
    assert len(app_routes) == 1 and isinstance(app_routes[0], Route)
    assert app_routes[0].path == "/{path:path}", "a route outside app.ROUTES would escape the fuzz"
    table = plans(ctx)
    defaults = {
        "t": "models",
        "prefix": "",
        "repo": "alice/pub",
        "rev": "main",
        "path": "b",
        "name": "x",
        "qpath": "dir",
        "oid": ctx.lfs["oid"],
        "size": str(ctx.lfs["size"]),
        "num": "1",
        "cid": ctx.comments[0],
        "xhash": ctx.xet["xorb_hash"],
        "chunk": ctx.xet["chunk"],
        "xfile": ctx.xet["file"],
    }
    for _methods, pattern, handler in ROUTES:
        assert handler in table, f"no fuzz strategy for {handler.__name__} ({pattern.pattern})"
        filled = [p.format(**defaults) for p in table[handler].paths]
        assert any(pattern.fullmatch(p) for p in filled), f"no template reaches {pattern.pattern}"


ROUTE_IDS = [f"{handler.__name__}-{i}" for i, (_, _, handler) in enumerate(ROUTES)]


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
@FUZZ
@given(data=st.data())
def test_no_5xx_on_any_request(ctx, route, data):
    method, target, hdrs, chunks = draw_request(data, ctx, route)
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in hdrs]
    if sum(map(len, chunks)) and not any(k == "content-length" for k, _ in hdrs):
        raw.append((b"content-length", str(sum(map(len, chunks))).encode()))
    r = ctx.portal.call(_asgi, ctx.app, method, target, raw, chunks)
    check_reply(r, method, target)
    if ctx.cache["plans"][route[2]].writes:  # reads change nothing; the module ends with a check
        assert_healthy(ctx)


@FUZZ
@given(data=st.data())
def test_no_5xx_on_commits(ctx, data):
    """The commit route alone, with a valid path and token: the NDJSON body is all that varies."""
    body = data.draw(cached(ctx, "commit_lines", lambda: commit_lines(ctx)), label="body")
    state = ctx.app.state.store.repos.load("model", "bob/scratch")
    body = body.replace(HEAD.encode(), state["branches"]["main"].encode())
    path = "/api/models/bob/scratch/commit/main"
    r = ctx.call("POST", path, ctx.tokens["bob"], body, chunks=data.draw(chunked(body)))
    check_reply(r, "POST", path.encode())
    assert_healthy(ctx)


@FUZZ
@given(card=yaml_cards())
def test_no_5xx_on_cards(ctx, card):
    """Any README front matter: validate-yaml answers it, and a repo holding it still lists."""
    content = dumps({"content": card.decode("utf-8", "replace")})
    r = ctx.call("POST", "/api/validate-yaml", ctx.tokens["bob"], content)
    check_reply(r, "POST", b"/api/validate-yaml")
    path = "/api/models/bob/scratch/commit/main"
    r = ctx.call("POST", path, ctx.tokens["bob"], commit_body("card", add_file("README.md", card)))
    check_reply(r, "POST", path.encode())
    for url in ("/api/models/bob/scratch", "/api/models?filter=fuzz&cardData=1", "/api/models"):
        check_reply(ctx.call("GET", url), "GET", url.encode())
    assert_healthy(ctx)


@FUZZ
@given(method=st.sampled_from(METHODS), target=TARGETS, body=GARBAGE_BODIES)
def test_no_5xx_on_unrouted_requests(ctx, method, target, body):
    r = ctx.call(method, target.encode("ascii"), body=body, raw=True)
    check_reply(r, method, target.encode())
