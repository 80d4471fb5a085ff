"""The server bugs test_server_fuzz found (each was a 500), replayed over a real uvicorn server.

Plus what only a socket can send: a Content-Length that lies, a target or a header h11 refuses.
"""

from __future__ import annotations

import os
import re
import socket

import httpx2
import pytest

from tests.hub.fuzz_strategies import add_file, commit_body, dumps
from zoo.hub.server import HubStore, serve_in_thread


@pytest.fixture(scope="module")
def live(hub):
    """(url, token, repo_id): a user and a repo with one file on the session's uvicorn server."""
    user = f"fz-{os.urandom(3).hex()}"
    token = hub.add_token(user, write=True)
    hub.api(token).create_repo(f"{user}/r")
    hub.api(token).upload_file(path_or_fileobj=b"x", path_in_repo="a.txt", repo_id=f"{user}/r")
    return hub.url, token, f"{user}/r"


COMMIT = "/api/models/{repo}/commit/main"
REGRESSIONS = [  # (what was a 500, method, path, body, JSON content type?, status, code)
    (
        "cursor '²' (isdigit, not int)",
        "GET",
        "/api/models?cursor=%C2%B2",
        b"",
        0,
        400,
        "BadRequest",
    ),
    (
        "5000-digit cursor",
        "GET",
        "/api/models/{repo}/tree/main?cursor=" + "9" * 5000,
        b"",
        0,
        400,
        "BadRequest",
    ),
    (
        "19-digit cursor, past sys.maxsize for islice",
        "GET",
        "/api/models/{repo}/commits/main?cursor=" + "9" * 19,
        b"",
        0,
        400,
        "BadRequest",
    ),
    ("5000-digit limit", "GET", "/api/models?limit=" + "9" * 5000, b"", 0, 400, "BadRequest"),
    (
        "5000-digit exp, LFS PUT",
        "PUT",
        "/{repo}.git/info/lfs/objects/" + "a" * 64 + "/1?sig=x&exp=" + "9" * 5000,
        b"x",
        0,
        403,
        "Forbidden",
    ),
    ("JSON nested 5000 deep", "POST", "/api/repos/create", b"[" * 5000, 1, 400, "BadRequest"),
    ("NDJSON line nested 5000 deep", "POST", COMMIT, b'{"a":' * 5000, 0, 400, "BadRequest"),
    (
        "paths-info JSON list",
        "POST",
        "/api/models/{repo}/paths-info/main",
        b'["a.txt"]',
        1,
        400,
        "BadRequest",
    ),
    (
        "preupload sample not ASCII",
        "POST",
        "/api/models/{repo}/preupload/main",
        dumps({"files": [{"path": "b.txt", "size": 1, "sample": "é"}]}),
        1,
        400,
        "BadRequest",
    ),
    (
        "commit content not ASCII",
        "POST",
        COMMIT,
        commit_body("s", {"key": "file", "value": {"path": "b.txt", "content": "é"}}),
        0,
        400,
        "BadRequest",
    ),
    ("commit summary lone surrogate", "POST", COMMIT, commit_body("\ud800"), 0, 400, "BadRequest"),
    (
        "commit path lone surrogate",
        "POST",
        COMMIT,
        commit_body("s", add_file("\udfff", b"x")),
        0,
        400,
        "BadRequest",
    ),
    (
        "validate-yaml nested 800 deep",
        "POST",
        "/api/validate-yaml",
        dumps({"content": "---\na: " + "[" * 800 + "\n---\n"}),
        1,
        400,
        "InvalidYaml",
    ),
    (
        "validate-yaml !!float x",
        "POST",
        "/api/validate-yaml",
        dumps({"content": "---\na: !!float x\n---\n"}),
        1,
        400,
        "InvalidYaml",
    ),
    (
        "validate-yaml tag '☃' in X-Error-Message",
        "POST",
        "/api/validate-yaml",
        dumps({"content": "---\na: !!%E2%98%83 x\n---\n"}),
        1,
        400,
        "InvalidYaml",
    ),
]


@pytest.mark.parametrize(
    "what,method,path,body,is_json,status,code", REGRESSIONS, ids=[r[0] for r in REGRESSIONS]
)
def test_regressions_over_uvicorn(live, what, method, path, body, is_json, status, code):
    url, token, repo_id = live
    headers = {"authorization": f"Bearer {token}"}
    if is_json:
        headers["content-type"] = "application/json"
    r = httpx2.request(method, url + path.format(repo=repo_id), content=body, headers=headers)
    assert (r.status_code, r.headers.get("x-error-code")) == (status, code), r.text[:300]
    assert r.json()["error"] and r.headers["x-error-message"]


CARDS = [  # README front matter that made model_info and list_models 500 -> the cardData served
    ("x: .inf", {"x": "inf"}),
    ("2020-01-01: date key", {"2020-01-01": "date key"}),
    ('x: "\\ud800"', {"x": "?"}),
    ("x: !!float x", None),
    ("x: !!bool x", None),
    ("deep: " + "[" * 800, None),
    (
        "a: &a [x, x, x, x, x, x, x, x]\n"
        + "".join(  # 8**8 values once expanded
            f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, c in zip("abcdefg", "bcdefgh")
        ),
        None,
    ),
]


@pytest.mark.parametrize("front,card", CARDS, ids=[c[0][:12] for c in CARDS])
def test_card_regressions_over_uvicorn(hub, live, front, card):
    url, token, repo_id = live
    auth = {"authorization": f"Bearer {token}"}
    # A raw commit: the official client runs validate-yaml first and refuses the broken ones.
    readme = add_file("README.md", f"---\n{front}\n---\n".encode())
    r = httpx2.post(
        url + COMMIT.format(repo=repo_id), content=commit_body("card", readme), headers=auth
    )
    assert r.status_code == 200, r.text
    info = httpx2.get(f"{url}/api/models/{repo_id}", headers=auth)
    assert info.status_code == 200 and info.json().get("cardData") == card
    author = repo_id.split("/")[0]
    found = hub.api(token).list_models(author=author, full=True, cardData=True)
    assert [m.id for m in found] == [repo_id]


def _raw_exchange(url: str, data: bytes, wait_s: float = 15.0) -> bytes:
    """Send `data` on a fresh connection and read until the server closes it."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait_s) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_what_h11_refuses_and_content_length_lies(tmp_path):
    """Over a real socket: a short body times out (408), a long one leaves garbage that uvicorn
    refuses (400), a bad target or Content-Length is refused by h11 (400). Never a 5xx."""
    HubStore(tmp_path)
    create = b"POST /api/repos/create HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    # keep_alive_s=1: the server closes each connection soon after its last answer.
    with serve_in_thread(tmp_path, body_timeout_s=0.5, keep_alive_s=1) as url:
        statuses = {
            "short body": _raw_exchange(url, create + b"content-length: 100\r\n\r\n{}"),
            "long body": _raw_exchange(url, create + b"content-length: 2\r\n\r\n{}garbage\r\n\r\n"),
            "non-ASCII target": _raw_exchange(url, b"GET /\xff HTTP/1.1\r\nhost: x\r\n\r\n"),
            "Content-Length '²'": _raw_exchange(
                url, create + "content-length: ²\r\n\r\n".encode("latin-1")
            ),
        }
    codes = {k: re.findall(rb"HTTP/1.1 (\d{3})", v) for k, v in statuses.items()}
    assert codes == {
        "short body": [b"408"],
        "long body": [b"400", b"400"],  # the app refuses {} (no name), uvicorn the garbage
        "non-ASCII target": [b"400"],
        "Content-Length '²'": [b"400"],
    }
    assert b"x-error-code: RequestTimeout" in statuses["short body"]


@pytest.mark.parametrize(
    "header, status",
    [
        ("bytes=0-" + "9" * 5000, 206),
        ("bytes=-" + "9" * 5000, 206),
        ("bytes=" + "9" * 5000 + "-", 416),
    ],
)
def test_range_bounds_of_5000_digits(live, header, status):
    """A Range bound too long for int() was a 500 (found on the Xet reconstruction route)."""
    url, token, repo_id = live
    r = httpx2.get(f"{url}/{repo_id}/resolve/main/a.txt", headers={"range": header})
    assert r.status_code == status, r.text[:300]
    assert status == 416 or r.content == b"x"
