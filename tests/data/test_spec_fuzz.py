"""Property tests of the corpus-spec parser: any input either parses or raises a one-line UserError
naming the offending field; no other exception escapes."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz_helpers import (
    FUZZ,
    RAW_YAML,
    SCALARS,
    add_key,
    at,
    field,
    names,
    one_line_error,
    paths,
    typo,
)
from zoo.data.spec import load_corpus_spec, parse_corpus_spec

FULL = {
    "ratios": [0.4, 0.6, 1.0],
    "seed": 3,
    "datasets": [
        {
            "name": "Man.Pages_1",
            "type": "retrieval",
            "source": {"path": "in-domain/ManPages"},
            "columns": {"query": "summary", "neg": "hard"},
            "instruction": "Find it",
            "cap": 20,
        },
        {
            "name": "sts",
            "type": "sts",
            "source": {"hub": "org/data@0123abc", "path": "a.jsonl"},
            "columns": {"score": "sim"},
            "min_score": 0.5,
        },
        {"name": "cls", "type": "classification", "source": {"path": "c.parquet"}, "negatives": 3},
        {"name": "pairs", "type": "pair", "source": {"hub": "org/pairs@main"}},
    ],
}
MINIMAL = {"datasets": [{"name": "c", "type": "clustering", "source": {"path": "c.jsonl"}}]}
VALID = [FULL, MINIMAL]
# YAML keys may be numbers, null, booleans or dates as well as strings
KEYS = (
    st.text(max_size=8) | st.integers(-5, 5) | st.none() | st.booleans() | st.floats() | st.dates()
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)

_outcome = one_line_error


def _from_file(content: str | bytes) -> str | None:
    """Write `content` to a corpus.yaml and return the outcome of loading it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.yaml"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return _outcome(load_corpus_spec, path)


@st.composite
def mutated(draw) -> tuple[dict, str | None, str, tuple[str, ...], bool]:
    """Return (doc, raw YAML token or None, operation, names the error must mention one of,
    whether it must fail). Every mapping of a spec is strict: an added or misspelt key fails."""
    doc = copy.deepcopy(draw(st.sampled_from(VALID)))
    op = draw(st.sampled_from(["drop", "add", "replace", "rename", "raw"]))
    if op == "add":
        path, key = add_key(draw, doc, VALUES)
        return doc, None, op, (key,), True
    path = draw(st.sampled_from(paths(doc)))
    parent, key = at(doc, path[:-1]), path[-1]
    if op == "drop":
        del parent[key]
        return doc, None, op, (field(path), field(path[:-1])), False
    if op == "rename" and isinstance(key, str):
        new = typo(key, draw)
        parent[new] = parent.pop(key)
        return doc, None, op, (key, new), True
    raw = draw(st.sampled_from(RAW_YAML)) if op == "raw" else None
    parent[key] = "ZZRAWZZ" if raw else draw(VALUES)
    return doc, raw, op, (field(path),), False


def _dump(doc: dict, raw: str | None = None) -> str:
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    return text.replace("ZZRAWZZ", raw) if raw else text


@settings(FUZZ, max_examples=300)
@given(case=mutated())
def test_a_mutated_valid_spec_parses_or_names_the_field(case):
    doc, raw, op, expected, must_fail = case
    messages = [_from_file(_dump(doc, raw))] + ([] if raw else [_outcome(parse_corpus_spec, doc)])
    for message in messages:
        assert message is not None or not must_fail, f"{op} was accepted: {doc}"
        if message is not None and not raw:  # a raw token may break the YAML itself
            assert any(names(message, n) for n in expected if n), (expected, message)


def test_every_valid_document_parses():
    for doc in VALID:
        assert _outcome(parse_corpus_spec, doc) is None and _from_file(_dump(doc)) is None


@FUZZ
@given(value=VALUES)
def test_any_value_parses_or_is_one_user_error(value):
    _outcome(parse_corpus_spec, value)
    _outcome(parse_corpus_spec, {"datasets": value, "ratios": value, "seed": value})
    _outcome(parse_corpus_spec, {"datasets": [value, {**MINIMAL["datasets"][0], "source": value}]})
    _outcome(parse_corpus_spec, {"datasets": [{**MINIMAL["datasets"][0], "columns": value}]})
    _from_file(yaml.safe_dump(value, allow_unicode=True))


@FUZZ
@given(text=st.text(max_size=80) | st.sampled_from(RAW_YAML))
def test_any_text_parses_or_is_one_user_error(text):
    _from_file(text)
    _from_file(f"datasets:\n  - name: {text}\n    type: sts\n    source: {{path: a}}\n")
    _from_file(f"ratios: [{text}]\n" + _dump(MINIMAL))


@FUZZ
@given(blob=st.binary(max_size=64) | st.sampled_from([b"\xff\xfe", b"seed: \xe9\n", b"\x00"]))
def test_any_file_parses_or_is_one_user_error(blob):
    _from_file(blob)
    _from_file(_dump(MINIMAL).encode() + blob)


def test_every_raw_token_parses_or_is_one_user_error():
    for token in RAW_YAML:
        _from_file(token + "\n")
        _from_file(f"seed: {token}\n" + _dump(MINIMAL))


def test_unreadable_paths_are_one_user_error(tmp_path):
    for path in [tmp_path / "missing.yaml", tmp_path, tmp_path / ("a" * 300)]:
        assert names(_outcome(load_corpus_spec, path), path.name)
