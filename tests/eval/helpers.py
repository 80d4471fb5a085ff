"""Small task folders for the eval tests: hand-made ones and trimmed copies of tiny-suite tasks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

# 20 hand-scored pairs (0 = unrelated .. 5 = same meaning); the tiny suite has no STS task.
STS_PAIRS = [
    ("A man is playing a guitar.", "A man plays the guitar.", 4.8),
    ("A woman is slicing an onion.", "A woman is cutting an onion.", 4.6),
    ("A dog runs in the park.", "A puppy is running across the grass.", 3.8),
    ("The cat sleeps on the sofa.", "A cat is napping on the couch.", 4.2),
    ("Children are playing football.", "Kids play soccer outside.", 4.0),
    ("A man is driving a car.", "A person is riding a bicycle.", 1.6),
    ("The stock market fell today.", "Share prices dropped sharply this afternoon.", 3.9),
    ("She is reading a book.", "A woman is writing a letter.", 1.4),
    ("The train arrived late.", "The weather is sunny and warm.", 0.1),
    ("He is cooking pasta.", "A chef prepares spaghetti in the kitchen.", 3.5),
    ("Birds fly south in winter.", "The computer needs a new battery.", 0.0),
    ("A girl is singing on stage.", "A man is fixing a roof.", 0.2),
    ("The river flooded the village.", "Floodwater from the river covered the town.", 4.5),
    ("I bought apples at the market.", "He sold his old motorcycle.", 0.6),
    ("The baby is crying.", "An infant is weeping.", 4.7),
    ("A plane takes off from the airport.", "An airplane departs from the runway.", 4.4),
    ("The teacher explains the lesson.", "Students listen to the lecture.", 2.5),
    ("Two men are playing chess.", "Two people are playing a board game.", 3.2),
    ("The server crashed at midnight.", "Fresh bread is sold at the bakery.", 0.0),
    ("He repaired the broken fence.", "The fence was fixed by him.", 4.6),
]


def write_task(folder: Path, name: str, kind: str, files: dict[str, list[dict]], **extra) -> Path:
    """Write a task folder: task.yaml plus one JSON Lines file per entry of `files`."""
    folder.mkdir(parents=True, exist_ok=True)
    info = {"name": name, "type": kind, "description": f"test task {name}", **extra}
    (folder / "task.yaml").write_text(yaml.safe_dump(info, sort_keys=False), encoding="utf-8")
    for fname, rows in files.items():
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        (folder / fname).write_text(text, encoding="utf-8")
    return folder


def sts_task(folder: Path) -> Path:
    rows = [{"s1": a, "s2": b, "score": s} for a, b, s in STS_PAIRS]
    return write_task(folder, "HandSTS", "sts", {"test.jsonl": rows})


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def trimmed_copy(src: Path, dst: Path, n: int, distractors: int = 0) -> Path:
    """Copy a task folder keeping the first n test rows (retrieval: n queries, their positives
    and `distractors` other documents); train.jsonl is kept whole."""
    shutil.copytree(src, dst)
    if (src / "queries.jsonl").exists():
        queries = read_rows(src / "queries.jsonl")[:n]
        wanted = {d for q in queries for d in q["pos"]}
        corpus = read_rows(src / "corpus.jsonl")
        others = [d for d in corpus if d["id"] not in wanted][:distractors]
        kept = [d for d in corpus if d["id"] in wanted] + others
        _write(dst / "queries.jsonl", queries)
        _write(dst / "corpus.jsonl", kept)
    else:
        _write(dst / "test.jsonl", read_rows(src / "test.jsonl")[:n])
    return dst


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
