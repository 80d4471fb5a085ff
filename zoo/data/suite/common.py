"""Shared pieces of the suite builders: size caps, hash splits, and task-folder assembly.

Splits are deterministic: a unit (a man page, a Python package, a Bible book, ...) goes to the
test side when sha256(salt, key) falls below the test fraction, whatever the size, so a smaller
suite's train and test sets are subsets of a larger one's and never cross. The salt is the
*source* name, so all tasks of one source agree on which units are held out.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Caps:
    """Per-task caps of one suite size (None = no cap)."""

    train: int | None  # training rows per task
    test: int | None  # test queries / rows per task
    corpus: int | None  # retrieval distractors added to the test corpus


SIZES: dict[str, Caps] = {
    "tiny": Caps(train=120, test=60, corpus=200),
    "small": Caps(train=2000, test=500, corpus=5000),
    "full": Caps(train=None, test=2000, corpus=None),
}
TEST_FRACTION = 0.2


@dataclass
class Task:
    """One task folder to write: task.yaml fields, files, and how it enters the corpus spec."""

    name: str
    type: str  # task-folder type (taskfolder.FolderType)
    group: str  # "in-domain" | "ood" | "new-domain"
    source: str  # the SourceInfo name it came from
    description: str
    main_score: str
    files: dict[str, list[dict]]
    instruction: str | None = None
    train_type: str | None = None  # corpus spec type of train.jsonl, None when not for training
    notes: list[str] = field(default_factory=list)


def unit_hash(salt: str, key: str) -> float:
    """Return a uniform number in [0, 1) from sha256(salt, key)."""
    digest = hashlib.sha256(f"{salt}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_test(salt: str, key: str, fraction: float = TEST_FRACTION) -> bool:
    """Return True if the unit `key` is held out for testing."""
    return unit_hash(salt, key) < fraction


def hash_order(items: Iterable[T], salt: str, key: Callable[[T], str]) -> list[T]:
    """Return items sorted by their hash (then key), a fixed pseudo-random order."""
    return sorted(items, key=lambda it: (unit_hash(salt + "/order", key(it)), key(it)))


def split(items: Iterable[T], salt: str, key: Callable[[T], str]) -> tuple[list[T], list[T]]:
    """Return (train, test) items, each in hash order."""
    ordered = hash_order(items, salt, key)
    return [i for i in ordered if not is_test(salt, key(i))], [
        i for i in ordered if is_test(salt, key(i))
    ]


def cap(items: Sequence[T], limit: int | None) -> list[T]:
    """Return the first `limit` items (all when limit is None)."""
    return list(items if limit is None else items[:limit])


def balanced(items: Sequence[T], label: Callable[[T], str], limit: int | None) -> list[T]:
    """Take items round-robin over sorted labels (keeping each label's order) up to `limit`."""
    by_label: dict[str, list[T]] = defaultdict(list)
    for item in items:
        by_label[label(item)].append(item)
    out: list[T] = []
    queues = [by_label[k] for k in sorted(by_label)]
    depth = 0
    while any(depth < len(q) for q in queues) and (limit is None or len(out) < limit):
        for q in queues:
            if depth < len(q) and (limit is None or len(out) < limit):
                out.append(q[depth])
        depth += 1
    return out


def words(text: str, limit: int) -> str:
    """Return the first `limit` words of text, whitespace normalised."""
    return " ".join(text.split()[:limit])


def norm(text: str) -> str:
    """Return a comparison key: lower case, letters and digits only."""
    return re.sub(r"[\W_]+", " ", text.lower()).strip()


def doc_id(prefix: str, text: str) -> str:
    """Return a stable corpus id for a text."""
    return f"{prefix}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def retrieval_files(
    train: Sequence[tuple[str, list[str]]],
    test: Sequence[tuple[str, list[str]]],
    distractors: Sequence[str],
    caps: Caps,
    prefix: str,
    disjoint_docs: bool = True,
) -> dict[str, list[dict]]:
    """Build train.jsonl, corpus.jsonl and queries.jsonl from (query, [positive texts]) units.

    Test units whose query (or, with `disjoint_docs`, a positive) also occurs in the training
    pairs are dropped, so test queries are disjoint from training pairs. The corpus holds the
    test positives plus up to `caps.corpus` distractors (training positives, then `distractors`).
    """
    train = cap(_dedupe(train), caps.train)
    seen = {norm(q) for q, _ in train}
    seen |= {norm(p) for _, ps in train for p in ps} if disjoint_docs else set()
    test = [
        (q, ps)
        for q, ps in _dedupe(test)
        if norm(q) not in seen and not seen & {norm(p) for p in ps}
    ]
    test = cap(test, caps.test)
    docs: dict[str, str] = {}
    queries = []
    for q, ps in test:
        ids = [doc_id(prefix, p) for p in ps]
        docs.update(zip(ids, ps))
        queries.append({"id": doc_id(prefix + "q", q), "text": q, "pos": list(dict.fromkeys(ids))})
    extra = [p for _, ps in train for p in ps] + list(distractors)
    for text in cap(list(dict.fromkeys(extra)), caps.corpus):
        docs.setdefault(doc_id(prefix, text), text)
    return {
        "train.jsonl": [{"query": q, "pos": ps} for q, ps in train],
        "corpus.jsonl": [{"id": i, "text": t} for i, t in docs.items()],
        "queries.jsonl": queries,
    }


def _dedupe(units: Sequence[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    """Drop units whose query repeats an earlier one (case and punctuation ignored)."""
    seen: set[str] = set()
    out = []
    for q, ps in units:
        if norm(q) and norm(q) not in seen and ps:
            seen.add(norm(q))
            out.append((q, ps))
    return out
