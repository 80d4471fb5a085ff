"""WordNet 3.0 (Debian wordnet-base): term -> gloss retrieval and sense/example pairs.

Parses /usr/share/wordnet/data.{noun,verb,adj,adv} directly (no nltk). A data line is
`offset lexfile pos n_words (word lex_id)* n_ptrs ... | gloss`; the gloss is the definition
followed by "; "-separated quoted examples. The split unit is the lemma (all its senses on one
side), so a held-out term was never a training query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from zoo.data.suite.common import Caps, Task, cap, hash_order, is_test, retrieval_files
from zoo.data.suite.requirements import SourceInfo

ROOT = Path("/usr/share/wordnet")
SOURCE = SourceInfo(
    name="wordnet",
    title="WordNet 3.0 (Debian wordnet-base)",
    licence="WordNet 3.0 licence (Princeton University; BSD-style, attribution required)",
    debs=("wordnet-base",),
    paths=(str(ROOT / "data.noun"),),
)
POS = {"noun": "noun", "verb": "verb", "adj": "adjective", "adv": "adverb"}


@dataclass(frozen=True)
class Synset:
    key: str  # first lemma: the split unit
    pos: str
    lexfile: str
    lemmas: tuple[str, ...]
    definition: str
    examples: tuple[str, ...]


def synsets() -> list[Synset]:
    """Return every synset of the four data files, in file order."""
    out = []
    for part, pos in POS.items():
        for line in (
            (ROOT / f"data.{part}").read_text(encoding="utf-8", errors="replace").splitlines()
        ):
            if line.startswith("  ") or "|" not in line:
                continue
            head, gloss = line.split("|", 1)
            fields = head.split()
            n_words = int(fields[3], 16)
            lemmas = tuple(fields[4 + 2 * i].replace("_", " ") for i in range(n_words))
            lemmas = tuple(re.sub(r"\(\w+\)$", "", lemma) for lemma in lemmas)
            definition, examples = _split_gloss(gloss)
            if definition:
                out.append(Synset(lemmas[0].lower(), pos, fields[1], lemmas, definition, examples))
    return out


def _split_gloss(gloss: str) -> tuple[str, tuple[str, ...]]:
    """Split a gloss into its definition and its quoted example sentences."""
    examples = tuple(e.strip() for e in re.findall(r'"([^"]+)"', gloss) if len(e.split()) >= 4)
    definition = re.split(r';?\s*"', gloss, maxsplit=1)[0].strip(" ;")
    return definition, examples


def build(caps: Caps) -> list[Task]:
    """Build GlossaryRetrieval and WordSenseExamplePairs."""
    ordered = hash_order(synsets(), "wordnet", lambda s: f"{s.key}/{s.pos}/{s.definition}")
    train = [s for s in ordered if not is_test("wordnet", s.key)]
    test = [s for s in ordered if is_test("wordnet", s.key)]
    return [_glossary(train, test, caps), _example_pairs(train, test, caps)]


def _glossary(train: list[Synset], test: list[Synset], caps: Caps) -> Task:
    def unit(s: Synset):
        return f"{s.lemmas[0]} ({s.pos})", [s.definition]

    files = retrieval_files([unit(s) for s in train], [unit(s) for s in test], [], caps, "wn")
    return Task(
        name="GlossaryRetrieval",
        type="retrieval",
        group="in-domain",
        source="wordnet",
        description="Given an English word and its part of speech, find a WordNet definition.",
        main_score="ndcg_at_10",
        files=files,
        train_type="retrieval",
        instruction="Given a word, retrieve its dictionary definition",
    )


def _example_pairs(train: list[Synset], test: list[Synset], caps: Caps) -> Task:
    return Task(
        name="WordSenseExamplePairs",
        type="pair_classification",
        group="in-domain",
        source="wordnet",
        description="Decide whether an example sentence illustrates the given word sense "
        "(negatives: an example of another sense from the same lexicographer file).",
        main_score="max_ap",
        train_type="pair",
        instruction="Retrieve an example sentence that uses the word in this sense",
        files={
            "train.jsonl": cap(_pairs(train), caps.train),
            "test.jsonl": cap(_pairs(test), caps.test),
        },
    )


def _pairs(synsets_: list[Synset]) -> list[dict]:
    """(sense, own example) positives, each with a same-lexfile other-sense example negative."""
    with_examples = [s for s in synsets_ if s.examples]
    by_lexfile: dict[str, list[Synset]] = {}
    for s in with_examples:
        by_lexfile.setdefault(s.lexfile, []).append(s)
    out = []
    for n, s in enumerate(with_examples):
        pool = by_lexfile[s.lexfile]
        other = pool[(n * 7919 + 1) % len(pool)]
        sense = f"{s.lemmas[0]}: {s.definition}"
        out.append({"s1": sense, "s2": s.examples[0], "label": 1})
        if other is not s and other.key != s.key:
            out.append({"s1": sense, "s2": other.examples[0], "label": 0})
    return out
