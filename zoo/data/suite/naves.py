"""Nave's Topical Bible (Debian sword-dict-naves): topic -> verse retrieval with human qrels.

Reads the SWORD zLD module directly: `.idx` holds (offset, size) of each key record in `.dat`; a
key record is the key, CRLF, then (block, entry) as little-endian uint32; `.zdx` holds (offset,
size) of each zlib block in `.zdt`; a block starts with its entry count, then (offset, size) per
entry. Every `<lb/>` line or `<item>` of an entry with verse references becomes one query
"Topic: subtopic" whose positives are the referenced verses (ranges expanded, at most 50).
The split unit is the topic, so held-out queries come from topics no training row saw.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

from zoo.data.suite import bible
from zoo.data.suite.common import Caps, Task, hash_order, is_test, retrieval_files
from zoo.data.suite.requirements import SourceInfo

MODULE = Path("/usr/share/sword/modules/lexdict/zld/nave/nave")
SOURCE = SourceInfo(
    name="naves",
    title="Nave's Topical Bible (Debian sword-dict-naves, SWORD zLD module)",
    licence="public domain (Debian copyright file: 'Public Domain -- Copy Freely')",
    debs=("sword-dict-naves",),
    paths=(str(MODULE) + ".zdt",),
    pip=bible.SOURCE.pip,
)
MAX_POSITIVES = 50
_REF = re.compile(r'osisRef="([^"]+)"')
_TAG = re.compile(r"<[^>]+>")


def entries() -> list[tuple[str, str]]:
    """Return every (topic, entry markup) of the module, in file order."""
    idx, dat = MODULE.with_suffix(".idx").read_bytes(), MODULE.with_suffix(".dat").read_bytes()
    zdx, zdt = MODULE.with_suffix(".zdx").read_bytes(), MODULE.with_suffix(".zdt").read_bytes()
    blocks: dict[int, bytes] = {}
    out = []
    for i in range(len(idx) // 8):
        offset, size = struct.unpack_from("<II", idx, 8 * i)
        key, _, tail = dat[offset : offset + size].partition(b"\r\n")
        block_no, entry_no = struct.unpack_from("<II", tail, 0)
        if block_no not in blocks:
            boff, bsize = struct.unpack_from("<II", zdx, 8 * block_no)
            blocks[block_no] = zlib.decompress(zdt[boff : boff + bsize])
        block = blocks[block_no]
        eoff, esize = struct.unpack_from("<II", block, 4 + 8 * entry_no)
        out.append(
            (key.decode("utf-8", "replace"), block[eoff : eoff + esize].decode("utf-8", "replace"))
        )
    return out


def _verse_ids(ref: str, order: list[int], position: dict[int, int]) -> list[int]:
    """Expand an OSIS reference or range (`Exod.6.16-Exod.6.20`) into verse ids; [] if unknown."""
    ends = [_parse_ref(part) for part in ref.split("-")]
    if any(e is None for e in ends) or len(ends) > 2:
        return []
    first, last = ends[0], ends[-1]
    if first not in position or last not in position:
        return []
    lo, hi = position[first], position[last]
    return order[lo : hi + 1] if 0 <= hi - lo < MAX_POSITIVES else []


def _parse_ref(ref: str) -> int | None:
    parts = ref.split(".")
    if (
        len(parts) != 3
        or parts[0] not in bible.OSIS
        or not (parts[1].isdigit() and parts[2].isdigit())
    ):
        return None
    return (bible.OSIS.index(parts[0]) + 1) * 1_000_000 + int(parts[1]) * 1000 + int(parts[2])


def queries() -> list[tuple[str, str, list[int]]]:
    """Return (topic, query text, positive verse ids) for every usable subtopic line."""
    order = sorted(bible.verses())
    position = {vid: i for i, vid in enumerate(order)}
    out = []
    for topic, markup in entries():
        for line in re.split(r"<lb/>|<item>", markup):
            refs = _REF.findall(line)
            head = " ".join(_TAG.sub(" ", line.split("<ref", 1)[0]).replace("→", " ").split())
            head = re.sub(r"^\d+\.\s*", "", head).strip(" ,;:.")
            ids = list(dict.fromkeys(v for r in refs for v in _verse_ids(r, order, position)))
            if ids and len(ids) <= MAX_POSITIVES and not head.lower().startswith("see"):
                head = head.lower() if head.isupper() else head
                text = f"{topic.title()}: {head}" if head else topic.title()
                out.append((topic, text, ids))
    return out


def build(caps: Caps) -> list[Task]:
    """Build NaveTopicRetrieval: queries by topic split, WEB verses as passages."""
    web = {vid: pair[1] for vid, pair in bible.verses().items()}
    rows = hash_order(queries(), "naves", lambda q: q[1])
    train = [
        (text, [web[v] for v in ids[:3]])
        for topic, text, ids in rows
        if not is_test("naves", topic)
    ]
    test = [(text, [web[v] for v in ids]) for topic, text, ids in rows if is_test("naves", topic)]
    distractors = [web[v] for v in hash_order(web, "naves/distractors", str)]
    files = retrieval_files(train, test, distractors, caps, "verse", disjoint_docs=False)
    return [
        Task(
            name="NaveTopicRetrieval",
            type="retrieval",
            group="new-domain",
            source="naves",
            description="Given a topic from Nave's Topical Bible, find the verses it cites "
            "(World English Bible text).",
            main_score="ndcg_at_10",
            files=files,
            train_type="retrieval",
            instruction="Given a Bible topic, retrieve the verses about it",
        )
    ]
