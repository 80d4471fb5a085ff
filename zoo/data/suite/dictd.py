"""dictd dictionaries (Debian dict-jargon, dict-devil, dict-foldoc): term -> definition (OOD).

A dictd database is `NAME.index` (headword, base64 offset, base64 length per line) and
`NAME.dict.dz` (gzip-compatible text). Entries of the Jargon File, Ambrose Bierce's Devil's
Dictionary and FOLDOC form one out-of-domain retrieval test; none is used for training.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from zoo.data.suite.common import Caps, Task, hash_order, retrieval_files, words
from zoo.data.suite.requirements import SourceInfo

ROOT = Path("/usr/share/dictd")
DICTS = ("jargon", "devil", "foldoc")
SOURCE = SourceInfo(
    name="dictd",
    title="The Jargon File 4.4.7, The Devil's Dictionary (1911), FOLDOC (Debian dict-* packages)",
    licence="Jargon File: public domain; Devil's Dictionary: public domain; FOLDOC: GFDL-1.1+",
    debs=tuple(f"dict-{d}" for d in DICTS),
    paths=tuple(str(ROOT / f"{d}.index") for d in DICTS),
)
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _b64(text: str) -> int:
    value = 0
    for ch in text:
        value = value * 64 + _B64.index(ch)
    return value


def entries(name: str) -> list[tuple[str, str]]:
    """Return (headword, definition text) of one dictionary, skipping its 00-database entries."""
    with gzip.open(ROOT / f"{name}.dict.dz") as handle:
        data = handle.read()
    out = []
    for line in (ROOT / f"{name}.index").read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or parts[0].startswith("00"):
            continue
        raw = data[_b64(parts[1]) : _b64(parts[1]) + _b64(parts[2])].decode("utf-8", "replace")
        lines = raw.strip().splitlines()
        body = " ".join(" ".join(lines[1:]).split())  # the first line repeats the headword
        if len(body.split()) >= 8:
            out.append((parts[0], words(body, 120)))
    return out


def build(caps: Caps) -> list[Task]:
    """Build DictTermRetrieval (test only)."""
    units = [(term, [text]) for name in DICTS for term, text in entries(name)]
    units = hash_order(units, "dictd", lambda u: f"{u[0]}/{u[1][0][:40]}")
    files = retrieval_files([], units, [], caps, "dict")
    del files["train.jsonl"]
    return [
        Task(
            name="DictTermRetrieval",
            type="retrieval",
            group="ood",
            source="dictd",
            description="Given a term from the Jargon File, the Devil's Dictionary or FOLDOC, "
            "find its entry.",
            main_score="ndcg_at_10",
            files=files,
            instruction="Given a term, retrieve its dictionary entry",
        )
    ]
