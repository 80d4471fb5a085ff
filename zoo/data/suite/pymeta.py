"""Installed Python distributions' metadata: summary -> README retrieval (out-of-domain test).

Reads the METADATA of every distribution importlib.metadata sees in the running environment
(the project's virtualenv after `pip install`), so counts follow what is installed; stats.json
records them. Test only: no row of this source is used for training.
"""

from __future__ import annotations

import importlib.metadata as md
import re

from zoo.data.suite.common import Caps, Task, hash_order, retrieval_files, words
from zoo.data.suite.requirements import SourceInfo

SOURCE = SourceInfo(
    name="pymeta",
    title="Metadata (summary, README) of the Python distributions installed with the project",
    licence="each distribution's own licence (as in its METADATA); used as short excerpts",
    base=True,
)
_MARKUP = re.compile(  # links (keep the text), HTML tags, rst directives, markdown runs
    r"!?\[([^\]]*)\]\([^)]*\)|<[^>]+>|^\.\. .*$|^\s+:\w+:.*$|\|[^|\n]+\|"
    r"|[#*`>=_~-]{2,}|^\s*[#>*-]+\s*",
    re.MULTILINE,
)


def readmes() -> list[tuple[str, str, str]]:
    """Return (name, summary, README excerpt) per distribution, sorted by normalised name."""
    out = {}
    for dist in md.distributions():
        meta = dist.metadata
        name = (meta.get("Name") or "").lower().replace("_", "-")
        summary = " ".join((meta.get("Summary") or "").split())
        body = meta.get_payload() or meta.get("Description") or ""
        text = words(_MARKUP.sub(r"\1", body), 150)
        if name and name != "boom-zoo" and len(summary.split()) >= 3 and len(text.split()) >= 30:
            out.setdefault(name, (name, summary, text))
    return [out[k] for k in sorted(out)]


def build(caps: Caps) -> list[Task]:
    """Build PyPackageReadmeRetrieval (test only)."""
    units = hash_order(readmes(), "pymeta", lambda r: r[0])
    test = [(summary, [text]) for _, summary, text in units]
    files = retrieval_files([], test, [], caps, "pkg")
    del files["train.jsonl"]
    return [
        Task(
            name="PyPackageReadmeRetrieval",
            type="retrieval",
            group="ood",
            source="pymeta",
            description="Given a Python package's one-line summary, find its README excerpt.",
            main_score="ndcg_at_10",
            files=files,
            instruction="Given a one-line summary of a software package, retrieve its README",
        )
    ]
