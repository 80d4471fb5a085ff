"""What the browser tests look at: a real `zoo boom` on the tiny suite, published on the session
Hub (a base, 2 bags, the BLS model and the merged model with its evaluated card), and a repo of
XSS payloads in every untrusted place a page shows."""

from __future__ import annotations

import json
from dataclasses import dataclass

from huggingface_hub import CommitOperationAdd

from zoo.cli import main
from zoo.hub.session import open_hub
from zoo.pipelines import push

EXPERIMENT = "web-boom"
MERGED = f"webexp/{EXPERIMENT}"


@dataclass(frozen=True)
class Published:
    merged: str
    experiment: str
    parents: tuple[str, ...]
    base: str
    tasks: tuple[str, ...]


def publish_boom(hub, tiny_suite, tiny_bert, out) -> Published:
    """Push the tiny BERT as a base and run `zoo boom` with evaluation and publishing."""
    with open_hub(hub.url, hub.admin_token) as h:
        push(h, tiny_bert, "webexp/tiny-base", kind="base")
    tasks = ("in-domain/ManPageRetrieval", "ood/LocaleBitextMining")
    argv = ["boom", str(tiny_suite / "corpus.yaml"), "--base", "webexp/tiny-base",
            "--ratios", "0.5,1.0", "--publish", MERGED, "--bag-prefix", "webexp/bag",
            "--bls", "webexp/bls", "--steps", "2", "--batch-size", "8", "--out", str(out),
            "--json", "--hub", hub.url, "--token", hub.admin_token]  # fmt: skip
    for t in tasks:
        argv += ["--eval-task-dir", str(tiny_suite / t)]
    assert main(argv) == 0
    meta = json.loads(open(hub.api().hf_hub_download(MERGED, "zoo.json")).read())
    return Published(
        MERGED,
        EXPERIMENT,
        tuple(meta["parents"]),
        meta["base_model"],
        tuple(t.split("/")[1] for t in tasks),
    )


# Each payload tries to run `window.__xss = 1` or open a dialog; none may.
PAYLOADS = [
    "<script>window.__xss=1;alert(1)</script>",
    '<img src=x onerror="window.__xss=1;alert(1)">',
    "[click me](javascript:window.__xss=1;alert(1))",
    '<a href="JaVaScRiPt:alert(1)">mixed case</a>',
    '<svg onload="window.__xss=1"><script>alert(1)</script></svg>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<details open ontoggle="window.__xss=1;alert(1)">toggle</details>',
    "[link](<javascript:alert(1)>) [ref][r]\n\n[r]: javascript:alert(1)",
    '<div style="background:url(javascript:alert(1))">styled</div>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
]
MERMAID_PAYLOAD = (
    '```mermaid\ngraph BT\n  a["<img src=x onerror=window.__xss=1>"]'
    ' --> b["<script>alert(1)</script>"]\n'
    '  click a "javascript:alert(1)"\n```\n'
)
XSS_REPO = "webxss/payloads"
EVIL_FILE = '"><img src=x onerror=alert(1)>.txt'


def publish_xss(hub) -> str:
    """A repo whose card, file names and commit messages are XSS payloads."""
    api = hub.api()
    api.create_repo(XSS_REPO, exist_ok=True)
    card = "---\nlicense: mit\ntags: ['<script>alert(1)</script>']\n---\n# Payloads\n\n"
    card += "\n\n".join(PAYLOADS) + "\n\n" + MERMAID_PAYLOAD
    svg = (
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(1)</script></svg>'
    )
    ops = [
        CommitOperationAdd("README.md", card.encode()),
        CommitOperationAdd(EVIL_FILE, b"<script>alert(1)</script>"),
        CommitOperationAdd("evil.svg", svg),
        CommitOperationAdd("evil.html", b"<script>alert(1)</script>"),
    ]
    message = "<img src=x onerror=alert(1)> <script>alert(1)</script>"
    api.create_commit(XSS_REPO, ops, commit_message=message)
    api.create_commit(
        XSS_REPO,
        [CommitOperationAdd("pr.txt", b"x")],
        commit_message="<script>alert(1)</script>",
        commit_description="<img src=x onerror=window.__xss=1> [x](javascript:alert(1))",
        create_pr=True,
    )
    return XSS_REPO
