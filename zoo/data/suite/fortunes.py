"""fortune cookie files (Debian fortunes, fortunes-min): clustering by topical category file.

Each file under /usr/share/games/fortunes is a category; quotes are separated by lines holding
a single '%'. Labels are noisy (a category is the collector's choice). The split unit is the quote.
"""

from __future__ import annotations

from pathlib import Path

from zoo.data.suite.common import Caps, Task, balanced, hash_order, is_test
from zoo.data.suite.requirements import SourceInfo

ROOT = Path("/usr/share/games/fortunes")
CATEGORIES = (
    "computers",
    "drugs",
    "education",
    "food",
    "law",
    "linux",
    "literature",
    "love",
    "medicine",
    "pets",
    "politics",
    "science",
    "sports",
    "startrek",
    "work",
    "wisdom",
)
SOURCE = SourceInfo(
    name="fortunes",
    title="fortune-mod cookie files (Debian fortunes, fortunes-min)",
    licence="BSD-4-Clause-UC (fortune-mod; quotations as collected)",
    debs=("fortunes", "fortunes-min"),
    paths=(str(ROOT / "computers"),),
)


def quotes() -> list[tuple[str, str]]:
    """Return (quote, category) for quotes of 4-120 words in the topical categories."""
    out = []
    for category in CATEGORIES:
        path = ROOT / category
        if not path.exists():
            continue
        for chunk in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            text = " ".join(chunk.split())
            if 4 <= len(text.split()) <= 120:
                out.append((text, category))
    return out


def _category(quote: tuple[str, str]) -> str:
    return quote[1]


def build(caps: Caps) -> list[Task]:
    """Build FortunesClustering."""
    rows = hash_order(dict.fromkeys(quotes()), "fortunes", lambda q: q[0])
    train = balanced([q for q in rows if not is_test("fortunes", q[0])], _category, caps.train)
    test = balanced([q for q in rows if is_test("fortunes", q[0])], _category, caps.test)
    return [
        Task(
            name="FortunesClustering",
            type="clustering",
            group="in-domain",
            source="fortunes",
            description="Cluster fortune-cookie quotes by their topical category file.",
            main_score="v_measure",
            train_type="clustering",
            instruction="Identify the topic of the quotation",
            files={
                "train.jsonl": [{"text": t, "label": c} for t, c in train],
                "test.jsonl": [{"text": t, "label": c} for t, c in test],
            },
        )
    ]
