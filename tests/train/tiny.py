"""The training tests' data: small pair datasets cut from Python's own help text (pydoc_data).

The model they train is `tiny_base` (tests/train/conftest.py), built by tests/tiny.py.
"""

from __future__ import annotations

from tests.tiny import pydoc_corpus


def pairs(n: int, *, topic: str, offset: int = 0) -> dict[str, list[str]]:
    """n (anchor, positive) rows; the positive repeats the anchor's key words (easy to learn)."""
    lines = pydoc_corpus(2000)[offset : offset + n]
    return {
        "anchor": [f"{topic} {ln[:60]}" for ln in lines],
        "positive": [f"{ln[:40]} about {topic}" for ln in lines],
    }


def toy_sets() -> dict[str, object]:
    """Three small datasets covering every input shape: plain pairs, hard negatives, groups."""
    from datasets import Dataset

    neg = pairs(48, topic="beta", offset=100)
    return {
        "alpha": Dataset.from_dict(pairs(80, topic="alpha")),
        "beta": Dataset.from_dict(
            {**neg, "negative": [f"unrelated {t}" for t in neg["positive"][::-1]]}
        ),
        "gamma": Dataset.from_dict(
            {**pairs(40, topic="gamma", offset=200), "group": ["g1", "g2", "g3", "g4"] * 10}
        ),
    }
