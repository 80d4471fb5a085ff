"""Hypothesis strategies for fuzzing the Hub server: requests that are mostly valid, a little wrong.

Each dimension of a request (path, method, query, headers, body) is drawn valid most of the time
and broken now and then, so that most requests get past auth, routing and parsing and reach the
code behind them with one thing wrong. `plans` maps every handler of app.ROUTES to its path
templates and body strategy; `ctx` is test_server_fuzz.Ctx (tokens, repos, commits, the LFS object).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from urllib.parse import quote

from hypothesis import strategies as st

from zoo.hub.server import routes_discussions as D
from zoo.hub.server import routes_files as F
from zoo.hub.server import routes_repos as R
from zoo.hub.server import routes_upload as U
from zoo.hub.server import routes_xet as XR

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "FOO"]
LFS_DATA = b"\0lfs" * 300  # the LFS object the fixture uploads to bob/scratch
HEAD = "@HEAD@"  # replaced by the current head of bob/scratch when the request is sent


def pct(text: str, safe: str = "") -> str:
    """Percent-encode `text` as UTF-8, lone surrogates included (as a client with a bug would)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe=safe)


def wire_target(path: str) -> bytes:
    """Percent-encode what h11 would refuse in a request target (all but visible ASCII)."""
    return "".join(c if "!" <= c <= "~" else pct(c) for c in path).encode("ascii")


def ndjson(*items) -> bytes:
    return b"".join(json.dumps(i).encode() + b"\n" for i in items)


def commit_body(summary: str, *ops: dict, parent: str | None = None) -> bytes:
    header = {"summary": summary, "description": ""}
    if parent:
        header["parentCommit"] = parent
    return ndjson({"key": "header", "value": header}, *ops)


def add_file(path: str, data: bytes) -> dict:
    return {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode()}}


# -- value strategies ----------------------------------------------------------------------------


def often(good: st.SearchStrategy, bad: st.SearchStrategy, n: int = 3) -> st.SearchStrategy:
    """`good` n times out of n + 1, else `bad` (st.one_of would weigh both the same)."""
    return st.sampled_from([True] * n + [False]).flatmap(lambda g: good if g else bad)


HEX40 = st.text("0123456789abcdef", min_size=40, max_size=40)
HEX64 = st.text("0123456789abcdef", min_size=64, max_size=64)
WEIRD = [
    "",
    ".",
    "..",
    "...",
    ".git",
    "a/../b",
    "../../etc/passwd",
    "-x",
    "x.lock",
    "HEAD",
    "refs/pr/1",
    "refs/heads/main",
    "refs/tags/v1",
    "main\n",
    " main",
    "\x00",
    "é",
    "☃",
    "\ufeff",
    "%",
    "%zz",
    "%2e%2e",
    "%2F",
    "a//b",
    "/a",
    "a/",
    "a\\b",
    "x" * 300,
    "x/" * 200,
    "a" * 5000,
    "null",
    "0",
    "\ud800",
    "a\udfff.txt",
    "\ud83d\ude00",  # lone surrogates (valid JSON escapes), a valid pair
]
TEXT = st.one_of(st.sampled_from(WEIRD), st.text(max_size=40), st.text(min_size=200, max_size=600))
NAMES = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)
REF_NAMES = often(st.sampled_from(["b1", "b2", "t1", "main", "dev"]), NAMES, 2)
DIGITS = st.one_of(
    st.integers(-5, 10**6).map(str),
    st.sampled_from(["", "²", "١٢", "0x10", "1e3", " 1", "+1", "9" * 18, "9" * 19, "9" * 5000]),
)
# Literal segments go on the wire as they are (garbage percent-escapes included).
RAW_SEGMENTS = st.sampled_from(["..", "%2e%2e", "%2F", "%00", "%", "%zz", "%ff%fe", "a%2Fb", "%C3"])


def segment(values=TEXT) -> st.SearchStrategy[str]:
    """One path segment: a value quoted like the client does (safe=''), or raw garbage."""
    return st.one_of(values.map(pct), RAW_SEGMENTS)


def json_values() -> st.SearchStrategy:
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from([2**63, -(2**63) - 1, 10**30, -1, 0]),
        st.floats(allow_nan=True, allow_infinity=True),
        TEXT,
    )
    return st.recursive(
        leaves,
        lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(TEXT, kids, max_size=4)),
        max_leaves=12,
    )


class Big(bytes):
    """Bytes that print short in Hypothesis' reports."""

    def __repr__(self) -> str:
        return f"Big({bytes(self[:16])!r} ... {len(self)} bytes)"


ANY_JSON = json_values()
GARBAGE_BODIES = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(
        [
            Big(b"[" * 5000),  # deeper than json.loads can recurse, within the body cap
            Big(b'{"a":' * 5000),
            Big(b"9" * 5000),
            b"1e999",
            b"\xff\xfe\x00",
            b'"\\ud800"',
            Big(b"x" * (70 << 10)),  # over max_body_bytes
        ]
    ),
)


def dumps(value) -> bytes:
    return json.dumps(value).encode()


def shaped(required: dict, optional: dict | None = None) -> st.SearchStrategy[dict]:
    """A JSON object of the right shape; now and then a field has the wrong type or is missing,
    and unknown keys come along."""
    req = {k: often(v, ANY_JSON, 6) for k, v in required.items()}
    opt = {k: often(v, ANY_JSON, 6) for k, v in (optional or {}).items()}
    base = often(
        st.fixed_dictionaries(req, optional=opt),
        st.fixed_dictionaries({}, optional={**req, **opt}),
        6,
    )
    extra = often(st.just({}), st.dictionaries(TEXT, ANY_JSON, max_size=2))
    return st.builds(lambda b, x: {**x, **b}, base, extra)


def json_body(required: dict, optional: dict | None = None) -> st.SearchStrategy[bytes]:
    bad = st.one_of(ANY_JSON.map(dumps), GARBAGE_BODIES)
    return often(shaped(required, optional).map(dumps), bad)


# -- per-route strategies: path, query and body ---------------------------------------------------


@dataclass
class Plan:
    """How to fuzz one handler: path templates (placeholders: the keys of path_values), a body,
    and whether it writes (then the request mostly targets bob/scratch with bob's token)."""

    paths: list[str]
    body: st.SearchStrategy[bytes] = GARBAGE_BODIES
    writes: bool = False
    xet: bool = False  # a CAS route: authorised by a Xet token, not a user token


YAML_SCALARS = [
    ".inf",
    "-.inf",
    ".nan",
    "2020-01-01",
    "2001-12-14t21:59:43.10-05:00",
    "!!binary aGk=",
    "!!set {a, b}",
    "~",
    "0x1F",
    "1_000",
    "1e400",
    "'\ud800'",
    '"\\ud800"',
    '"\\U0001F600"',
    "&x [1, {a: b}]",
    "*x",
    "[*x, *x]",
    "{a: *x}",
    "!!python/tuple [1]",
    "!!%E2%98%83 x",
    "[",
    "|\n  block",
    "[a, [b, [c]]]",
    "{? [a]: b}",
    "!!int x",
    "!!float x",
    "!!timestamp x",
    "!!bool x",
]
YAML_KEYS = [
    "tags",
    "license",
    "library_name",
    "pipeline_tag",
    "language",
    "datasets",
    "base_model",
    "2020-01-01",
    "1",
    "~",
    "true",
    "1.5",
    ".inf",
    '"\\ud800"',
    "[a]",
]


def yaml_cards() -> st.SearchStrategy[bytes]:
    line = st.builds(
        lambda k, v: f"{k}: {v}",
        st.one_of(st.sampled_from(YAML_KEYS), NAMES),
        st.one_of(st.sampled_from(YAML_SCALARS), st.text(max_size=20)),
    )
    generated = st.lists(line, min_size=1, max_size=4).map("\n".join)
    fronts = [
        "x: .inf",
        "x: .nan",
        "2020-01-01: date key",
        "? [a, b]\n: v",
        "1: int key",
        "a: !!binary aGk=",
        "s: !!set {a, b}",
        "t: 2020-01-01 10:00:00",
        "a: &a [1, 2]\nb: [*a, *a, *a]",
        "a: &a [x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, c in zip("abcdefg", "bcdefgh")
        ),  # 8**8 values once expanded
        "deep: " + "[" * 800,  # past the parser's recursion limit (and 0.1 s to parse)
        ": : :",
        "- not a mapping",
        "tags: [a, b]\nlicense: mit\nlibrary_name: x\npipeline_tag: 3",
        "x: 1e400",
        "x: '\ud800'",
        'x: "\\ud800"',
        "a: !!%E2%98%83 x",
    ]
    front = st.one_of(st.sampled_from(fronts), generated)
    card = front.map(lambda f: f"---\n{f}\n---\nbody\n".encode("utf-8", "replace"))
    return often(card, st.binary(max_size=100), 5)


def commit_lines(ctx) -> st.SearchStrategy[bytes]:
    good_path = st.one_of(
        st.sampled_from(["README.md", "dir/a.txt", "b", "dir/new.txt"]),
        NAMES.map(lambda n: f"new/{n}.txt"),
    )
    paths = often(good_path, st.one_of(TEXT, st.just("b/c")))
    content = often(st.binary(max_size=200), yaml_cards(), 2)
    b64 = often(content.map(lambda b: base64.b64encode(b).decode()), TEXT)
    parent = often(st.just(HEAD), st.one_of(st.sampled_from(ctx.shas), HEX40, TEXT), 2)
    header = shaped({"summary": TEXT}, {"description": TEXT, "parentCommit": parent})
    ops = st.one_of(
        yaml_cards().map(lambda card: add_file("README.md", card)),
        st.builds(lambda p, c: {"path": p, "content": c}, paths, b64).map(
            lambda v: {"key": "file", "value": v}
        ),
        st.builds(lambda p, c: {"path": p, "content": c, "encoding": "utf-8"}, paths, TEXT).map(
            lambda v: {"key": "file", "value": v}
        ),
        st.builds(
            lambda p, o, s: {"key": "lfsFile", "value": {"path": p, "oid": o, "size": s}},
            paths,
            often(st.just(ctx.lfs["oid"]), st.one_of(HEX64, TEXT)),
            often(st.just(ctx.lfs["size"]), st.one_of(st.integers(), st.none(), TEXT)),
        ),
        st.builds(
            lambda k, p: {"key": k, "value": {"path": p}},
            st.sampled_from(["deletedFile", "deletedFolder"]),
            paths,
        ),
    )
    bad_op = st.one_of(
        st.builds(lambda k, v: {"key": k, "value": v}, ANY_JSON, shaped({"path": paths})),
        ANY_JSON,
    )
    line = often(
        ops.map(dumps), st.one_of(bad_op.map(dumps), st.binary(max_size=50), GARBAGE_BODIES), 6
    )
    return st.builds(
        lambda h, ls, sep, end: sep.join([dumps({"key": "header", "value": h}), *ls]) + end,
        header,
        st.lists(line, max_size=4),
        often(st.just(b"\n"), st.sampled_from([b"\r\n", b"\n\n"])),
        st.sampled_from([b"", b"\n"]),
    )


def plans(ctx) -> dict:
    repo = "/api/{t}/{repo}"
    git = "/{prefix}{repo}.git/info/lfs/objects"
    oid = often(st.just(ctx.lfs["oid"]), st.one_of(HEX64, TEXT))
    lfs_obj = shaped({"oid": oid, "size": often(st.just(ctx.lfs["size"]), st.integers())})
    create = json_body(
        {"name": NAMES},
        {
            "organization": often(st.sampled_from(["bob", "alice", "team"]), TEXT),
            "type": st.sampled_from(["model", "dataset", "space"]),
            "private": st.booleans(),
            "visibility": st.sampled_from(["public", "private", "x"]),
        },
    )
    paths_list = st.lists(often(st.sampled_from(["b", "dir", "dir/a.txt", "nope"]), TEXT))
    form = st.lists(st.tuples(st.sampled_from(["paths", "paths", "expand", "x"]), TEXT)).map(
        lambda kv: "&".join(f"{k}={pct(v)}" for k, v in kv).encode()
    )
    preupload_file = shaped(
        {
            "path": often(st.sampled_from(["a.txt", "w.bin", "dir/a.txt"]), TEXT),
            "size": st.integers(),
        },
        {"sample": often(st.binary(max_size=20).map(lambda b: base64.b64encode(b).decode()), TEXT)},
    )
    return {
        R.create_repo: Plan(["/api/repos/create"], create),
        R.delete_repo: Plan(["/api/repos/delete"], create),
        R.whoami: Plan(["/api/whoami-v2"]),
        R.validate_yaml: Plan(
            ["/api/validate-yaml"],
            json_body(
                {"content": yaml_cards().map(lambda b: b.decode("utf-8", "replace"))},
                {"repoType": TEXT},
            ),
        ),
        R.list_repos: Plan(["/api/{t}"]),
        R.repo_info: Plan([repo, repo + "/revision/{rev}"]),
        F.tree: Plan([repo + "/tree/{rev}", repo + "/tree/{rev}/{qpath}"]),
        F.paths_info: Plan(
            [repo + "/paths-info/{rev}"],
            st.one_of(json_body({"paths": paths_list}, {"expand": st.booleans()}), form),
        ),
        U.preupload: Plan(
            [repo + "/preupload/{rev}"],
            json_body(
                {"files": st.lists(preupload_file, max_size=4)},
                {"gitIgnore": st.one_of(TEXT, st.just("*\n!a\n[z-a]\n/dir/\n**/x"))},
            ),
            writes=True,
        ),
        U.commit: Plan([repo + "/commit/{rev}"], often(commit_lines(ctx), GARBAGE_BODIES, 6), True),
        R.list_refs: Plan([repo + "/refs"]),
        R.list_commits: Plan([repo + "/commits/{rev}"]),
        R.create_branch: Plan(
            [repo + "/branch/{name}"], json_body({}, {"startingPoint": TEXT}), writes=True
        ),
        R.delete_branch: Plan([repo + "/branch/{name}"], writes=True),
        R.create_tag: Plan(
            [repo + "/tag/{rev}"], json_body({"tag": REF_NAMES}, {"message": TEXT}), writes=True
        ),
        R.delete_tag: Plan([repo + "/tag/{name}"], writes=True),
        XR.xet_token: Plan([repo + "/xet-read-token/{rev}", repo + "/xet-write-token/{rev}"]),
        **xet_plans(ctx),
        U.lfs_batch: Plan(
            [git + "/batch"],
            json_body(
                {
                    "operation": often(st.just("upload"), st.sampled_from(["download", ""])),
                    "objects": st.lists(lfs_obj, max_size=3),
                },
                {"transfers": st.lists(TEXT), "hash_algo": st.sampled_from(["sha256", "md5"])},
            ),
            writes=True,
        ),
        U.lfs_verify: Plan(
            [git + "/verify"],
            json_body({"oid": oid, "size": often(st.just(ctx.lfs["size"]), st.integers())}),
            writes=True,
        ),
        U.lfs_put: Plan([git + "/{oid}/{size}"], often(st.just(LFS_DATA), GARBAGE_BODIES), True),
        F.resolve: Plan(["/{prefix}{repo}/resolve/{rev}/{path}"]),
        **admin_plans(repo),
        **discussion_plans(),
    }


def discussion_plans() -> dict:
    """The discussions API: most requests name a discussion the fixture opened (1 to 3)."""
    d = "/api/{t}/{repo}/discussions"
    title = often(st.sampled_from(["A title", " padded ", "x" * 200]), TEXT)
    status = often(st.sampled_from(["open", "closed"]), st.sampled_from(["merged", "draft", "x"]))
    return {
        D.list_discussions: Plan([d]),
        D.create_discussion: Plan(
            [d],
            json_body({"title": title}, {"description": TEXT, "pullRequest": st.booleans()}),
            writes=True,
        ),
        D.discussion_details: Plan([d + "/{num}"]),
        D.comment: Plan([d + "/{num}/comment"], json_body({"comment": TEXT}), writes=True),
        D.edit_comment: Plan(
            [d + "/{num}/comment/{cid}/edit"], json_body({"content": TEXT}), writes=True
        ),
        D.hide_comment: Plan([d + "/{num}/comment/{cid}/hide"], writes=True),
        D.rename: Plan([d + "/{num}/title"], json_body({"title": title}), writes=True),
        D.change_status: Plan(
            [d + "/{num}/status"], json_body({"status": status}, {"comment": TEXT}), writes=True
        ),
        D.merge: Plan(
            [d + "/{num}/merge"],
            often(st.just(b""), json_body({}, {"comment": TEXT})),
            writes=True,
        ),
    }


def mutated(good: bytes) -> st.SearchStrategy[bytes]:
    """`good` itself, or with one byte flipped, cut short, or junk appended."""
    at = st.integers(0, max(len(good) - 1, 0))
    flip = at.map(lambda i: good[:i] + bytes([good[i] ^ 0xFF]) + good[i + 1 :])
    cut = at.map(lambda i: good[:i])
    extra = st.binary(min_size=1, max_size=64).map(lambda b: good + b)
    return often(st.just(good), st.one_of(flip, cut, extra, GARBAGE_BODIES), 2)


def xet_plans(ctx) -> dict:
    cas, x = XR.CAS_PREFIX, ctx.xet
    return {
        XR.post_xorb: Plan([cas + "/v1/xorbs/default/{xhash}"], mutated(x["xorb"]), True, True),
        XR.post_shard: Plan([cas + "/v1/shards"], mutated(x["shard"]), True, True),
        XR.get_dedup: Plan([cas + "/v1/chunks/default-merkledb/{chunk}"], xet=True),
        XR.get_reconstruction: Plan([cas + "/v1/reconstructions/{xfile}"], xet=True),
        XR.get_xorb_range: Plan([cas + "/xorbs/default/{xhash}"], xet=True),
    }


def admin_plans(repo: str) -> dict:
    from tests.hub.fuzz_admin import plans as admin  # it builds on this module's strategies

    return admin(repo)


def path_values(ctx, writes: bool) -> dict[str, st.SearchStrategy[str]]:
    def quoted(repo_id: str) -> str:
        return "/".join(quote(s, safe="") for s in repo_id.split("/"))

    r = ctx.repos
    known_repo = st.sampled_from([r["scratch"]] * 4 + [r["pub"]] * 2 + [r["priv"], r["ds"]])
    revs = st.one_of(
        st.sampled_from(["main", "main", "dev", "v1", "refs%2Fheads%2Fmain"]),
        st.sampled_from(ctx.shas),
    )
    if writes:
        known_repo = often(st.just(r["scratch"]), known_repo, 4)
        revs = often(st.just("main"), revs, 3)
    files = st.sampled_from(["README.md", "dir/a.txt", "b", "dir", "missing.txt", ".gitattributes"])
    return {
        "t": often(st.just("models"), st.sampled_from(["datasets", "spaces", "model", "x"]), 8),
        "prefix": often(st.just(""), st.sampled_from(["datasets/", "spaces/", "models/"]), 8),
        "repo": often(
            known_repo.map(quoted), st.builds(lambda a, b: f"{a}/{b}", segment(), segment()), 6
        ),
        "rev": often(revs, st.one_of(segment(HEX40), segment(), st.just("refs%2Fpr%2F1"))),
        "name": often(REF_NAMES, segment()),
        "path": often(
            files,
            st.one_of(
                files.map(quote),
                segment(),
                st.lists(segment(), min_size=1, max_size=4).map("/".join),
            ),
        ),
        "qpath": often(files.map(lambda f: quote(f, safe="")), segment()),
        "oid": often(st.just(ctx.lfs["oid"]), st.one_of(HEX64, segment())),
        "size": often(st.just(str(ctx.lfs["size"])), DIGITS.map(pct)),
        "num": often(st.sampled_from(["1", "2", "3"]), DIGITS.map(pct)),
        "cid": often(st.sampled_from(ctx.comments), st.one_of(HEX40, segment())),
        "xhash": often(st.just(ctx.xet["xorb_hash"]), st.one_of(HEX64, segment())),
        "chunk": often(st.just(ctx.xet["chunk"]), st.one_of(HEX64, segment())),
        "xfile": often(st.just(ctx.xet["file"]), st.one_of(HEX64, segment())),
    }


FLAG_KEYS = ["recursive", "expand", "blobs", "full", "cardData", "create_pr", "include_prs", "diff"]
QUERY_KEYS = ["filter", "author", "search", "sort", "sig", "expand[]", "pipeline_tag", "revision"]
QUERY_KEYS += ["type", "status"]
WORDS = ["lastModified", "createdAt", "downloads", "x", "fuzz", "license:mit", "alice", "formatted"]
WORDS += ["all", "open", "closed", "merged", "pull_request", "discussion", "bob"]


def query(ctx, writes: bool, xet: bool = False) -> st.SearchStrategy[str]:
    numbers = st.tuples(st.sampled_from(["cursor", "limit", "exp", "p"]), DIGITS)
    flags = st.tuples(st.sampled_from(FLAG_KEYS), st.sampled_from(["1", "true", "True", "0", ""]))
    words = st.tuples(st.sampled_from(QUERY_KEYS), st.one_of(TEXT, st.sampled_from(WORDS)))
    pair = st.one_of(numbers, numbers, flags, words).map(lambda kv: f"{pct(kv[0])}={pct(kv[1])}")
    fuzzed = st.lists(often(pair, RAW_SEGMENTS), min_size=1, max_size=4).map("&".join)
    signed = ctx.xet["query"] if xet else ctx.lfs["query"]
    sig = signed.split("&sig=")[1]
    forged = DIGITS.map(lambda d: f"exp={pct(d)}&sig={sig}")
    mixed = st.builds(lambda f: f"{signed}&{f}", fuzzed)
    if xet:  # the signed query of a xorb range URL
        return often(st.just(signed), st.one_of(st.just(""), fuzzed, mixed, forged), 2)
    if writes:  # the signed query of an LFS upload, for the PUT
        return often(st.just(ctx.lfs["query"]), st.one_of(st.just(""), fuzzed, mixed, forged), 2)
    return often(fuzzed, st.one_of(st.just(""), mixed), 2)


HEADER_TEXT = st.text(
    st.characters(min_codepoint=1, max_codepoint=255, blacklist_characters="\t\n\x0b\x0c\r "),
    min_size=1,
    max_size=60,
)
RANGES = st.one_of(
    st.sampled_from(
        [
            "bytes=0-0",
            "bytes=0-",
            "bytes=-0",
            "bytes=-1",
            "bytes=-",
            "bytes=5-1",
            "bytes=0-1,2-3",
            "items=0-1",
            "bytes = 0-1",
            "bytes=99999999999999999999-",
            "bytes=-99999999999999999999",
            "bytes=²-",
            "bytes=0-" + "9" * 5000,
        ]
    ),
    st.builds(lambda a, b: f"bytes={a}-{b}", st.integers(0, 10**4), st.integers(0, 10**4)),
    HEADER_TEXT,
)


def maybe(value: st.SearchStrategy, n: int = 1) -> st.SearchStrategy:
    """None (the header is left out) n times out of n + 1."""
    return often(st.none(), value, n)


def forged_xet_tokens(token: str) -> st.SearchStrategy[str]:
    parts = token.split(".")
    field = st.integers(0, len(parts) - 1)
    value = st.one_of(HEADER_TEXT, st.sampled_from(["\u00b2", "9" * 30, "", "read", "model"]))
    return st.builds(
        lambda i, v: "Bearer " + ".".join(parts[:i] + [v] + parts[i + 1 :]), field, value
    )


def headers(ctx, writes: bool, xet: bool = False) -> st.SearchStrategy[list[tuple[str, str]]]:
    t = ctx.tokens
    tokens = [f"Bearer {t['bob']}"] * (6 if writes else 2) + [f"Bearer {t['reader']}"]
    if xet:  # bob's write token for bob/scratch, a read token, and a user token (wrong kind)
        x = ctx.xet
        tokens = [f"Bearer {x['write']}"] * 6 + [f"Bearer {x['read']}", f"Bearer {t['bob']}"]
    bad = st.one_of(
        st.sampled_from(
            ["", "Bearer", "Bearer hf_zoo_nope", f"bearer  {t['bob']}", f"Basic {t['bob']}"]
        ),
        HEADER_TEXT,
    )
    if xet:  # a Xet token with one of its 7 fields replaced (expiry '²', an other repo...)
        bad = st.one_of(bad, forged_xet_tokens(ctx.xet["write"]))
    auth = often(st.sampled_from(tokens), bad, 8)
    ctype = st.sampled_from(
        [
            "application/json",
            "application/x-ndjson",
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/json;x",
        ]
    )
    length = st.one_of(
        st.sampled_from(["0", "1", "-1", "abc", "²", "1 2", "9" * 20, "9" * 5000]),
        st.integers(0, 10**9).map(str),
    )  # lies, and what h11 would refuse
    named = st.fixed_dictionaries(
        {
            "authorization": maybe(auth, 0),
            "content-type": maybe(often(ctype, HEADER_TEXT)),
            "range": maybe(RANGES),
            "content-length": maybe(length, 3),
            "host": maybe(HEADER_TEXT, 6),
            "x-fuzz": maybe(HEADER_TEXT, 6),
        }
    )
    return named.map(lambda d: [(k, v) for k, v in d.items() if v is not None and v != ""])


def chunked(body: bytes) -> st.SearchStrategy[list[bytes]]:
    """Split the body at up to three drawn offsets (NDJSON lines must survive any split)."""
    cuts = st.lists(st.integers(0, len(body)), max_size=3).map(sorted)
    return cuts.map(lambda c: [body[a:b] for a, b in zip([0, *c], [*c, len(body)])])


def cached(ctx, key, build):
    """Strategies are built once per module: building them costs more than drawing from them."""
    if key not in ctx.cache:
        ctx.cache[key] = build()
    return ctx.cache[key]


def draw_request(data, ctx, route) -> tuple[str, bytes, list, list[bytes]]:
    """Draw (method, target, headers, body chunks) for one route of app.ROUTES."""
    methods, pattern, handler = route
    plan = cached(ctx, "plans", lambda: plans(ctx))[handler]
    values = cached(ctx, ("values", plan.writes), lambda: path_values(ctx, plan.writes))
    template = data.draw(st.sampled_from(plan.paths))
    targeted = template.format(
        **{k: data.draw(v, label=k) for k, v in values.items() if "{" + k + "}" in template}
    )
    generic = cached(
        ctx,
        pattern,
        lambda: st.from_regex(pattern, fullmatch=True).map(lambda p: wire_target(p).decode()),
    )
    path = data.draw(often(st.just(targeted), generic, 8), label="path")
    q = data.draw(
        cached(ctx, ("query", plan.writes, plan.xet), lambda: query(ctx, plan.writes, plan.xet)),
        label="query",
    )
    target = (path + ("?" + q if q else "")).encode("ascii")
    method = data.draw(often(st.sampled_from(methods), st.sampled_from(METHODS), 8))
    body = data.draw(often(plan.body, st.just(b""), 6), label="body")
    if HEAD.encode() in body:
        state = ctx.app.state.store.repos.load("model", "bob/scratch") or {"branches": {"main": ""}}
        body = body.replace(HEAD.encode(), state["branches"]["main"].encode())
    hdrs = data.draw(
        cached(
            ctx, ("headers", plan.writes, plan.xet), lambda: headers(ctx, plan.writes, plan.xet)
        ),
        label="headers",
    )
    return method, target, hdrs, data.draw(chunked(body))


TARGETS = st.one_of(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=80),
    st.sampled_from(
        [
            "*",
            "http://x/api/models",
            "//api/models",
            "/api/models/../../x",
            "/%",
            "/api/models/a/b/..",
            "/api/models/%2e%2e/x",
            "/" + "a/" * 3000,
        ]
    ),
)
